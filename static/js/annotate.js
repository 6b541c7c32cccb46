// The annotate page: keyboard-first labelling, the next item leased and rendered behind the
// current one, heartbeats that keep both leases alive, and active-time measurement. During a
// qualification round nothing is prefetched (the round's last answer decides what comes next), and
// the training feedback after an answer waits for Next (Enter).
(() => {
  "use strict";
  const ws = document.getElementById("workspace");
  if (!ws || !window.htmx) return;

  // Show 4xx answers (validation errors, a lost lease) in their target instead of dropping them.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: true, error: true },
  ];

  const nextUrl = ws.dataset.nextUrl;
  const heartbeatUrl = (id) => ws.dataset.heartbeatUrl.replace(/\/0\/heartbeat\/$/, `/${id}/heartbeat/`);
  const skipUrl = (id) => ws.dataset.skipUrl.replace(/\/0\/skip\/$/, `/${id}/skip/`);
  const csrfToken = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  const currentBox = document.getElementById("current");
  const nextBox = document.getElementById("next");
  const flash = document.getElementById("flash");
  const guidelines = document.getElementById("guidelines");
  const shortcuts = document.getElementById("shortcuts");
  const skipDialog = document.getElementById("skip-dialog");
  const flagDialog = document.getElementById("flag-dialog");
  const flagUrl = (id) => ws.dataset.flagUrl.replace(/\/0\/flag\/$/, `/${id}/flag/`);
  const HEARTBEAT_MS = 60_000;
  const IDLE_MS = 30_000;

  // --- active time: seconds with the tab visible and some input in the last 30 s ----------
  let lastInput = Date.now();
  let activeMs = 0;
  ["keydown", "mousemove", "mousedown", "wheel", "touchstart", "scroll"].forEach((type) =>
    addEventListener(type, () => { lastInput = Date.now(); }, { passive: true, capture: true }));
  setInterval(() => {
    if (document.visibilityState === "visible" && Date.now() - lastInput < IDLE_MS) activeMs += 1000;
  }, 1000);
  const activeSeconds = () => (activeMs / 1000).toFixed(1);

  // --- the current item ----------------------------------------------------------------------
  let rowIndex = 0;
  let prefetching = null;
  const form = () => currentBox.querySelector("form.item");
  const rows = () => Array.from(form()?.querySelectorAll("fieldset.scale-row") || []);

  function isComplete(f) {
    if (!f) return false;
    const answered = Array.from(f.querySelectorAll("fieldset.scale-row")).every((row) => row.querySelector("input:checked"));
    const box = f.querySelector("textarea[name=justification][required]");
    return answered && (!box || box.value.trim() !== "");
  }

  function refreshState() {
    const f = form();
    if (!f) return;
    const done = isComplete(f);
    f.querySelector("button.submit").disabled = !done || f.dataset.sending === "1";
    f.querySelector(".hint").hidden = done;
    rows().forEach((row) => row.classList.toggle("answered", !!row.querySelector("input:checked")));
  }

  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    rowIndex = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("active", i === rowIndex));
    all[rowIndex].focus({ preventScroll: true });
    all[rowIndex].scrollIntoView({ block: "nearest" });
  }

  function setupCurrent() {
    activeMs = 0;
    const f = form();
    if (f) {
      f.addEventListener("change", refreshState);
      f.addEventListener("input", refreshState);
      refreshState();
      focusRow(0);
      prefetch();
    } else {
      scheduleRetry(currentBox.querySelector(".no-work"));
    }
  }

  function scheduleRetry(section) {
    if (!section || !section.dataset.retryAfter) return;
    let left = parseInt(section.dataset.retryAfter, 10);
    const counter = section.querySelector(".countdown");
    const timer = setInterval(() => {
      left -= 1;
      if (counter) counter.textContent = String(Math.max(left, 0));
      if (left <= 0) {
        clearInterval(timer);
        loadInto(currentBox, nextUrl).then(setupCurrent);
      }
    }, 1000);
  }

  function loadInto(box, url) {
    return htmx.ajax("GET", url, { target: box, swap: "innerHTML" });
  }

  function prefetch() {
    const f = form();
    if (!f || prefetching) return prefetching;
    if (f.dataset.qualification === "1") return null; // the round's outcome decides what comes next
    nextBox.replaceChildren();
    prefetching = loadInto(nextBox, `${nextUrl}?exclude=${f.dataset.assignment}`).finally(() => { prefetching = null; });
    return prefetching;
  }

  // After a submit or a skip: the prefetched item takes the stage at once.
  async function promote() {
    if (prefetching) await prefetching;
    if (nextBox.firstElementChild) {
      currentBox.replaceChildren(...nextBox.childNodes);
      nextBox.replaceChildren();
      htmx.process(currentBox);
    } else {
      await loadInto(currentBox, nextUrl);
    }
    setupCurrent();
  }

  function submitCurrent() {
    const f = form();
    if (!f || f.dataset.sending === "1") return;
    if (!isComplete(f)) {
      const missing = rows().findIndex((row) => !row.querySelector("input:checked"));
      flash.innerHTML = '<div class="flash error" role="alert">Answer every row first.</div>';
      if (missing >= 0) focusRow(missing);
      else f.querySelector("textarea[name=justification]")?.focus();
      return;
    }
    f.querySelector("input[name=active_seconds]").value = activeSeconds();
    f.dataset.sending = "1";
    refreshState();
    f.requestSubmit();
  }

  document.body.addEventListener("htmx:configRequest", (event) => {
    const f = form();
    if (f && event.detail.elt === f) {
      if (f.dataset.sending !== "1") {
        // A click on the button, not our key handler: same guard.
        if (!isComplete(f)) { event.preventDefault(); return; }
        f.dataset.sending = "1";
      }
      event.detail.parameters.active_seconds = activeSeconds();
    }
  });

  // My counts arrive with the submit's answer (an out-of-band swap); the campaign line was read on
  // page load, so the page adds its own new labels to it.
  function countOwnLabel() {
    const line = document.getElementById("campaign-progress");
    const labels = document.getElementById("campaign-labels");
    if (!line || !labels) return;
    const wanted = parseInt(line.dataset.wanted, 10);
    const now = Math.min(parseInt(line.dataset.labels, 10) + 1, wanted);
    line.dataset.labels = String(now);
    labels.textContent = String(now);
  }

  // A 409 that is not about this one item (the campaign closed, I left its pool): stay put.
  const stopCodes = /data-code="(closed|not_in_pool)"/;

  document.body.addEventListener("htmx:afterRequest", (event) => {
    const f = form();
    if (!f || event.detail.elt !== f) return;
    if (event.detail.successful) {
      const text = event.detail.xhr.responseText;
      if (text.includes('data-created="1"') && f.dataset.qualification !== "1") countOwnLabel();
      if (text.includes('data-hold="1"')) holdForFeedback(f);
      else promote();
    } else {
      f.dataset.sending = "0";
      refreshState();
      // the lease was lost: move on
      if (event.detail.xhr.status === 409 && !stopCodes.test(event.detail.xhr.responseText)) promote();
    }
  });

  // --- training feedback after a qualification answer: read it, then Next ------------------------
  const feedbackNext = () => flash.querySelector("button.gate-next");

  function holdForFeedback(f) {
    f.inert = true; // answered: the choices stay visible beside the expected answer, but frozen
    const next = feedbackNext();
    if (next) next.focus({ preventScroll: true });
    flash.scrollIntoView({ block: "nearest" });
  }

  function continueAfterFeedback() {
    flash.querySelectorAll(".gate-feedback").forEach((node) => node.remove());
    promote();
  }

  flash.addEventListener("click", (event) => {
    if (event.target.closest("button.gate-next")) continueAfterFeedback();
  });

  // --- skip ------------------------------------------------------------------------------------
  function openSkip() {
    if (!form()) return;
    skipDialog.querySelector("form").reset();
    skipDialog.showModal();
  }

  skipDialog.querySelector("button.cancel").addEventListener("click", () => skipDialog.close());
  skipDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form();
    const data = new FormData(event.target);
    const reason = (data.get("other") || "").trim() || data.get("reason") || "";
    if (!reason) {
      skipDialog.querySelector("input[name=other]").focus();
      return;
    }
    skipDialog.close();
    const body = new URLSearchParams({ reason });
    const response = await fetch(skipUrl(f.dataset.assignment), {
      method: "POST", body, headers: { "X-CSRFToken": csrfToken }, credentials: "same-origin",
    });
    const text = await response.text();
    flash.innerHTML = text;
    if (response.ok || (response.status === 409 && !stopCodes.test(text))) promote();
  });

  // --- flag: tell the admins about the item (it stays on screen) ---------------------------------
  function openFlag() {
    if (!flagDialog || !currentBox.querySelector("form.item")) return;
    flagDialog.querySelector("form").reset();
    flagDialog.showModal();
  }

  if (flagDialog) {
    flagDialog.querySelector("button.cancel").addEventListener("click", () => flagDialog.close());
    flagDialog.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      const f = currentBox.querySelector("form.item");
      const data = new FormData(event.target);
      const comment = flagDialog.querySelector("input[name=comment]");
      if (data.get("kind") === "comment" && !(data.get("comment") || "").trim()) { comment.focus(); return; }
      flagDialog.close();
      if (!f) return;
      htmx.ajax("POST", flagUrl(f.dataset.assignment), { source: event.target, target: "#flash", swap: "innerHTML" });
    });
  }

  function flagKeys(event) {
    if (/^[0-9]$/.test(event.key) && event.target.name !== "comment") {
      const input = flagDialog.querySelector(`input[data-hotkey="${event.key}"]`);
      if (input) { input.checked = true; event.preventDefault(); }
    }
  }

  // --- heartbeats: both leases stay alive while the page is open ------------------------------
  setInterval(() => {
    [currentBox, nextBox].forEach((box) => {
      const f = box.querySelector("form.item");
      if (!f) return;
      const body = new URLSearchParams(box === currentBox ? { active_seconds: activeSeconds() } : {});
      fetch(heartbeatUrl(f.dataset.assignment), {
        method: "POST", body, headers: { "X-CSRFToken": csrfToken }, credentials: "same-origin",
      }).then(async (response) => {
        if (response.status === 409 && box === currentBox) flash.innerHTML = await response.text();
      }).catch(() => {});
    });
  }, HEARTBEAT_MS);

  // --- keyboard --------------------------------------------------------------------------------
  function choose(row, key) {
    const input = row.querySelector(`input[data-hotkey="${key}"]`);
    if (!input) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    const all = rows();
    const next = all.findIndex((r, i) => i > rowIndex && !r.querySelector("input:checked"));
    if (next >= 0) focusRow(next);
    return true;
  }

  function moveAlong(row, step) {
    const inputs = Array.from(row.querySelectorAll("input[type=radio]"));
    const at = inputs.findIndex((i) => i.checked);
    const to = at < 0 ? (step > 0 ? 0 : inputs.length - 1) : Math.max(0, Math.min(inputs.length - 1, at + step));
    inputs[to].checked = true;
    inputs[to].dispatchEvent(new Event("change", { bubbles: true }));
  }

  function skipKeys(event) {
    if (event.key === "Enter") return;
    if (/^[0-9]$/.test(event.key) && event.target.name !== "other") {
      const input = skipDialog.querySelector(`input[data-hotkey="${event.key}"]`);
      if (input) { input.checked = true; event.preventDefault(); }
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey) return;
    if (skipDialog.open) { skipKeys(event); return; }
    if (flagDialog && flagDialog.open) { flagKeys(event); return; }
    if (shortcuts.open) return;
    if (feedbackNext() && event.key === "Enter" && !event.ctrlKey) {
      event.preventDefault();
      continueAfterFeedback();
      return;
    }
    const typing = event.target.matches("textarea, input[type=text], input[type=password]");
    if (typing) {
      if (event.key === "Escape") { event.target.blur(); focusRow(rowIndex); event.preventDefault(); }
      else if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submitCurrent(); }
      return;
    }
    if (event.ctrlKey) return;
    const row = rows()[rowIndex];
    switch (event.key) {
      case "?": shortcuts.showModal(); break;
      case "g": case "G": guidelines.hidden = !guidelines.hidden; break;
      case "s": case "S": if (feedbackNext()) return; openSkip(); break;
      case "f": case "F": openFlag(); break;
      case "j": case "J": form()?.querySelector("textarea[name=justification]")?.focus(); break;
      case "Enter": if (event.target.matches("button, a")) return; submitCurrent(); break;
      case "ArrowDown": focusRow(rowIndex + 1); break;
      case "ArrowUp": focusRow(rowIndex - 1); break;
      case "Tab":
        if (!form()) return;
        if (event.shiftKey ? rowIndex === 0 : rowIndex === rows().length - 1) return; // leave the rows
        focusRow(rowIndex + (event.shiftKey ? -1 : 1));
        break;
      case "ArrowLeft": if (row) moveAlong(row, -1); break;
      case "ArrowRight": if (row) moveAlong(row, 1); break;
      default:
        if (!(row && /^[0-9]$/.test(event.key) && choose(row, event.key))) return;
    }
    event.preventDefault();
  });

  document.getElementById("guidelines-toggle").addEventListener("click", () => { guidelines.hidden = !guidelines.hidden; });
  document.getElementById("shortcuts-toggle").addEventListener("click", () => shortcuts.showModal());
  currentBox.addEventListener("click", (event) => {
    const row = event.target.closest("fieldset.scale-row");
    if (row) rowIndex = rows().indexOf(row);
    if (event.target.closest("button.skip")) openSkip();
    if (event.target.closest("button.flag")) openFlag();
  });

  // Back or forward to a page the browser kept in memory: its counts and leases are stale. The page
  // is sent with no-store so this should not happen, but a browser may keep it all the same.
  addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });

  setupCurrent();
})();
