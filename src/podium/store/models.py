"""Every table, gathered so Alembic sees one metadata."""

from podium.addons import models as addons_models  # noqa: F401
from podium.billing import models as billing_models  # noqa: F401
from podium.catalog import models as catalog_models  # noqa: F401  (registers the tables)
from podium.cluster import models as cluster_models  # noqa: F401
from podium.deploy import models as deploy_models  # noqa: F401
from podium.domains import models as domains_models  # noqa: F401
from podium.experiments import models as experiments_models  # noqa: F401
from podium.health import models as health_models  # noqa: F401
from podium.people import models as people_models  # noqa: F401
from podium.store.db import Base

metadata = Base.metadata
