// Behaviour every page shares, bound by data attributes so no template needs inline script (the CSP allows none):
//   data-copy="#box"         a button that copies the box's value (data-copy-done="#status" says so)
//   data-select-on-focus     an input whose text is selected when it gets focus
//   data-confirm="question"  a form that asks before it submits
//   data-poll-visible-only   an htmx element that sends nothing while the tab is hidden (htmx trigger
//                            filters such as [document.visibilityState === 'visible'] need eval, which the CSP forbids)
(function () {
  "use strict";

  async function copyFrom(button) {
    const box = document.querySelector(button.dataset.copy);
    if (!box) return;
    box.select();
    try {
      await navigator.clipboard.writeText(box.value);
    } catch (err) {
      document.execCommand("copy");  // no clipboard API outside secure contexts
    }
    const done = button.dataset.copyDone ? document.querySelector(button.dataset.copyDone) : null;
    if (done) done.textContent = "Copied.";
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (button) copyFrom(button);
  });

  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  document.addEventListener("htmx:confirm", function (event) {
    const elt = event.detail.elt;
    if (elt.matches && elt.matches("[data-poll-visible-only]") && document.visibilityState !== "visible") {
      event.preventDefault();
    }
  });

  // An input with autofocus that arrives before the script ran (or in an htmx swap) is selected too.
  document.addEventListener("DOMContentLoaded", function () {
    const focused = document.activeElement;
    if (focused && focused.matches("[data-select-on-focus]")) focused.select();
  });
})();
