// Podium's own script, loaded from this server (the pages' CSP allows no inline code).
//
// The rollback buttons open their confirmation <dialog> with invoker commands
// (<button commandfor=… command="show-modal">), which current browsers handle with no
// script. For browsers without them, do the same here; a click listener on the document
// also covers the sections htmx swaps in later.
if (!("commandForElement" in HTMLButtonElement.prototype)) {
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[commandfor]") : null;
    if (button === null || button.getAttribute("command") !== "show-modal") {
      return;
    }
    const dialog = document.getElementById(button.getAttribute("commandfor"));
    if (dialog instanceof HTMLDialogElement && !dialog.open) {
      dialog.showModal();
    }
  });
}
