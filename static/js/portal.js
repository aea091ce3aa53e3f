// The portal's few behaviours that need a script; every page works without it.
"use strict";

// Preview the chosen source image before it is uploaded.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.preview) return;
  const preview = document.getElementById(input.dataset.preview);
  if (!preview) return;
  const file = input.files && input.files[0];
  if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
  if (file && file.type.startsWith("image/")) {
    preview.dataset.url = URL.createObjectURL(file);
    preview.src = preview.dataset.url;
    preview.hidden = false;
  } else {
    preview.hidden = true;
    preview.removeAttribute("src");
  }
});

// "Copy prompt": shown only where the clipboard can be used; the prompt stays selectable text.
function setUpCopyButtons(root) {
  for (const button of root.querySelectorAll("[data-copy]")) {
    if (!navigator.clipboard) continue;
    button.hidden = false;
    if (button.dataset.ready) continue;
    button.dataset.ready = "1";
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(source.textContent.trim());
      const label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
}
document.addEventListener("DOMContentLoaded", () => setUpCopyButtons(document));
// htmx:load fires for every piece of content htmx puts into the page.
document.addEventListener("htmx:load", (event) => setUpCopyButtons(event.target));

// Shared filter links stay short: empty fields are left out of the URL.
document.addEventListener("htmx:configRequest", (event) => {
  if (!event.detail.elt.closest("[data-drop-empty]")) return;
  const params = event.detail.parameters;
  for (const [name, value] of Object.entries(params)) {
    if (value === "" || value === null) delete params[name];
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("[data-drop-empty]")) return;
  for (const field of form.elements) {
    if (field.name && field.value === "") field.disabled = true;
  }
  setTimeout(() => { for (const field of form.elements) field.disabled = false; }, 0);
});

// The language switch applies on choosing; the button is there without JavaScript.
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
});

// Activity: the number of running jobs in the title, and a toast (and the browser's own
// notification, where the member allowed it) when one of the member's jobs finishes.
(() => {
  const body = document.body;
  const url = body && body.dataset.activityUrl;
  if (!url) return;
  const baseTitle = document.title;
  let since = body.dataset.since;
  const toasts = document.getElementById("toasts");
  const ask = document.getElementById("notify-ask");

  if ("Notification" in window && Notification.permission === "default" && ask) {
    ask.hidden = false;
    ask.addEventListener("click", async () => {
      await Notification.requestPermission();
      ask.hidden = true;
    });
  }

  function toast(item) {
    const box = document.createElement("div");
    box.className = "toast" + (item.ok ? "" : " bad");
    const link = document.createElement("a");
    link.href = item.url;
    link.textContent = item.title;
    const prompt = document.createElement("p");
    prompt.textContent = item.prompt;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", toasts.dataset.closeLabel);
    close.textContent = "×";
    close.addEventListener("click", () => box.remove());
    box.append(link, prompt, close);
    toasts.append(box);
    setTimeout(() => box.remove(), 12000);
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const note = new Notification(item.title, { body: item.prompt });
      note.onclick = () => { window.focus(); window.location.href = item.url; };
    }
  }

  async function check() {
    try {
      const response = await fetch(`${url}?since=${encodeURIComponent(since)}`,
                                   { headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        since = data.now;
        document.title = data.running ? `(${data.running}) ${baseTitle}` : baseTitle;
        data.finished.forEach(toast);
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
    setTimeout(check, document.hidden ? 15000 : 5000);
  }
  check();
})();

// How long running jobs have been going, ticking every second. The server writes the
// first value; ticking here keeps a polled card's HTML the same from one poll to the
// next, so the browser can revalidate it (ETag, answered 304) instead of fetching it.
(() => {
  const body = document.body;
  if (!body || !body.dataset.elapsedFormats) return;
  const [secondsOnly, minutes, hours] = JSON.parse(body.dataset.elapsedFormats);
  // The server's clock, not this machine's: the offset measured when the page came.
  const offset = Date.parse(body.dataset.since) - Date.now();
  const fill = (format, values) => format.replace(/%\((\w)\)d/g, (_, name) => String(values[name]));
  const tick = () => {
    const now = Date.now() + offset;
    for (const element of document.querySelectorAll("[data-elapsed-since]")) {
      const since = Date.parse(element.dataset.elapsedSince);
      if (Number.isNaN(since)) continue;
      const s = Math.max(0, Math.floor((now - since) / 1000));
      element.textContent = s < 60 ? fill(secondsOnly, { s })
        : s < 3600 ? fill(minutes, { m: Math.floor(s / 60), s: s % 60 })
        : fill(hours, { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
    }
  };
  setInterval(tick, 1000);
  document.addEventListener("htmx:load", tick);
})();
