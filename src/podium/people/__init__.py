"""People: users, their team memberships, personal tokens and sign-in sessions."""
