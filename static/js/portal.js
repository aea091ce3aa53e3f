// The portal's few behaviours that need a script; every page works without it.
"use strict";

// A translated format with its %(name)s / %(name)d places filled (Django's gettext wording).
const fill = (format, values) => format.replace(/%\((\w+)\)[sd]/g, (_, name) => String(values[name]));

// "1920 × 1080 · 2.4 MB", in the page's language (the wordings come with the input).
function imageSizeText(input, file, width, height) {
  const number = new Intl.NumberFormat(document.documentElement.lang || undefined, { maximumFractionDigits: 1 });
  const kilobytes = file.size / 1024;
  const size = kilobytes < 1024 ? fill(input.dataset.kilobytes, { n: number.format(kilobytes) })
    : fill(input.dataset.megabytes, { n: number.format(kilobytes / 1024) });
  return fill(input.dataset.sizeFormat, { width, height, size });
}

// Preview the chosen source image before it is uploaded, with its size.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.preview) return;
  const preview = document.getElementById(input.dataset.preview);
  if (!preview) return;
  const file = input.files && input.files[0];
  delete input.dataset.unreadable;
  const sizeLine = input.dataset.previewSize && document.getElementById(input.dataset.previewSize);
  if (sizeLine) sizeLine.hidden = true;
  if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
  if (file && file.type.startsWith("image/")) {
    const url = URL.createObjectURL(file);
    preview.dataset.url = url;
    preview.src = url;
    preview.hidden = false;
    if (sizeLine) {
      preview.decode().then(() => {
        if (preview.dataset.url !== url) return; // another file was chosen meanwhile
        sizeLine.textContent = imageSizeText(input, file, preview.naturalWidth, preview.naturalHeight);
        sizeLine.hidden = false;
      }, () => {
        // Named like an image but none the browser can read: said now, not after sending.
        if (preview.dataset.url !== url) return;
        preview.hidden = true;
        preview.removeAttribute("src");
        input.dataset.unreadable = "1"; // checkImageSize refuses to send it
        checkImageSize(input); // says so (unless it is too large, which it says first)
      });
    }
  } else {
    preview.hidden = true;
    preview.removeAttribute("src");
  }
});
// What the member writes and chooses in a video form is kept in this tab (sessionStorage)
// until a job is started from it: a session that ended while they wrote sends them to sign
// in, and back on the dashboard the words and choices are in their fields again. Only
// fields the page left as it gave them are filled (a remix's prompt stays the remix's).
// Files cannot be kept (a page cannot fill a file input), nor hidden fields (the form's
// one-time submission code among them).
const DRAFT_FIELDS = "textarea, input[type=text], select, input[type=checkbox]";
const draftKey = (form) => `portal-draft:${form.id}`;
const drafts = (() => {
  try { return window.sessionStorage; } catch { return null; } // storage refused by the browser
})();
function keepDraft(event) {
  const target = event.target;
  const form = target instanceof Element && target.matches(DRAFT_FIELDS) && target.closest(".generation-form");
  if (!form || !drafts || !form.id) return;
  const values = {};
  for (const field of form.querySelectorAll(DRAFT_FIELDS)) {
    if (!field.name || field.disabled) continue;
    if (field.type === "checkbox") values[field.name] = field.checked;
    else if (field.value) values[field.name] = field.value;
  }
  try { drafts.setItem(draftKey(form), JSON.stringify(values)); } catch { /* storage full: no draft */ }
}
document.addEventListener("input", keepDraft);
document.addEventListener("change", keepDraft);
function forgetDraft(form) {
  if (drafts && form.id) drafts.removeItem(draftKey(form));
}
document.addEventListener("submit", (event) => {
  // Sent without htmx: the answer is a new page, which shows the form again if refused.
  if (event.target.matches(".generation-form") && !event.defaultPrevented) forgetDraft(event.target);
});
const asThePageGaveIt = (field) => {
  if (field instanceof HTMLSelectElement) return [...field.options].every((option) => option.selected === option.defaultSelected);
  if (field.type === "checkbox") return field.checked === field.defaultChecked;
  return !field.value && !field.defaultValue;
};
document.addEventListener("DOMContentLoaded", () => {
  if (!drafts) return;
  for (const form of document.querySelectorAll(".generation-form[id]")) {
    let values;
    try { values = JSON.parse(drafts.getItem(draftKey(form)) || "{}"); } catch { values = {}; }
    for (const field of form.querySelectorAll(DRAFT_FIELDS)) {
      const value = values[field.name];
      // Left as the page gave it: the next listener raises its events (a model's options follow).
      if (value === undefined || !field.name || !asThePageGaveIt(field)) continue;
      if (field.type === "checkbox") {
        if (typeof value === "boolean") field.checked = value;
      } else if (field instanceof HTMLSelectElement) {
        if ([...field.options].some((option) => option.value === value)) field.value = value;
      } else if (typeof value === "string") {
        field.value = value;
      }
    }
  }
});

// A page sent back with messages next to its fields (sign-up, the account, the key) starts
// at the first field to fix, not at the field the page would otherwise focus.
document.addEventListener("DOMContentLoaded", () => {
  const invalid = document.querySelector("main form [aria-invalid=true]");
  if (invalid) invalid.focus();
});

// Requests the page makes by itself -- polls, and those that follow the member's typing and
// choosing (the estimate, a model's options, the filters) -- say so. Without a session they
// are not sent to sign in (the page would go away under the member's hands): the page says
// the session ended, with a link to sign in, and stops making them. A click or a submit is
// sent to sign in as before (what was being written is kept, above).
const BACKGROUND_TRIGGERS = ["input", "change", "keyup", "load", "revealed", "intersect"];
let sessionEnded = false;
document.addEventListener("htmx:configRequest", (event) => {
  const trigger = event.detail.triggeringEvent;
  if (trigger && !BACKGROUND_TRIGGERS.includes(trigger.type)) return;
  if (sessionEnded) event.preventDefault();
  else event.detail.headers["X-Portal-Background"] = "1";
});
document.addEventListener("portal:session-ended", () => {
  const body = document.body;
  const main = document.getElementById("main");
  if (sessionEnded || !main || !body.dataset.signInUrl) return;
  sessionEnded = true;
  const note = document.createElement("p");
  note.className = "message warning session-ended";
  note.setAttribute("role", "alert");
  const link = document.createElement("a");
  const next = window.location.pathname + window.location.search;
  link.href = `${body.dataset.signInUrl}?next=${encodeURIComponent(next)}&expired=1`;
  link.textContent = body.dataset.signInLabel;
  note.append(`${body.dataset.sessionEnded} `, link);
  main.prepend(note);
});

// What was typed, chosen or picked in a form before the page's scripts started (a quick
// member while the page loads) raised its events before anyone listened: raised again now,
// so the previews, the size checks, the estimate and a model's options follow it. htmx's
// own start-up listener was added first, so it has run.
document.addEventListener("DOMContentLoaded", () => {
  for (const field of document.querySelectorAll(".generation-form textarea, .generation-form input, .generation-form select")) {
    if (field instanceof HTMLSelectElement) {
      if ([...field.options].some((option) => option.selected !== option.defaultSelected)) {
        field.dispatchEvent(new Event("change", { bubbles: true }));
      }
    } else if (field.type === "file") {
      if (field.files && field.files.length) field.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (field.type === "checkbox" || field.type === "radio") {
      if (field.checked !== field.defaultChecked) field.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (field.type !== "hidden" && field.value !== field.defaultValue) {
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
});

// Each model has its own prompt limit (data-prompt-max, by model): the prompt box follows
// the chosen model. Text already longer stays; the server's message says what to cut.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (!(select instanceof HTMLSelectElement) || select.name !== "model" || !select.form) return;
  const prompt = select.form.querySelector("textarea[data-prompt-max]");
  if (!prompt) return;
  let limits = {};
  try { limits = JSON.parse(prompt.dataset.promptMax); } catch { return; }
  if (limits[select.value]) prompt.maxLength = limits[select.value];
  showPromptCount(prompt);
}, true); // capture: htmx's own listener on the model field stops the event (hx-trigger "consume")

// Near its model's limit the prompt box says how much is used, and a paste the browser cut
// at the limit (it does so silently) is said to have been cut.
function showPromptCount(box) {
  if (!box.id || box.maxLength <= 0 || !box.dataset.countFormat) return;
  let count = document.getElementById(`${box.id}-count`);
  if (!count) {
    count = document.createElement("p");
    count.id = `${box.id}-count`;
    count.className = "muted small prompt-count";
    count.setAttribute("aria-live", "polite");
    box.after(count);
  }
  const cut = box.dataset.cut === "1" && box.value.length >= box.maxLength;
  count.hidden = !cut && box.value.length < box.maxLength * 0.8;
  count.textContent = fill(box.dataset.countFormat, { n: box.value.length, max: box.maxLength })
    + (cut ? ` ${box.dataset.cutNote}` : "");
}
document.addEventListener("paste", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLTextAreaElement) || !box.dataset.countFormat || box.maxLength <= 0) return;
  const pasted = (event.clipboardData && event.clipboardData.getData("text")) || "";
  const room = box.maxLength - box.value.length + (box.selectionEnd - box.selectionStart);
  box.dataset.cut = pasted.length > room ? "1" : "";
});
document.addEventListener("input", (event) => {
  if (event.target instanceof HTMLTextAreaElement && event.target.dataset.countFormat) showPromptCount(event.target);
});

// An image over the form's limit (data-max-bytes) is refused next to its field before
// anything is sent: the server does not read a request that large, so it could not give
// the form back as it was typed. Picking another file clears the field's earlier message.
// A message next to a field, as Django's own errors show (an empty message clears it).
function setFieldError(input, message) {
  const id = `${input.id}_error`;
  const old = document.getElementById(id);
  if (old) old.remove();
  const describedBy = (input.getAttribute("aria-describedby") || "").split(" ")
    .filter((name) => name && name !== id);
  const group = input.closest(".field");
  if (group) group.classList.toggle("has-error", Boolean(message));
  let list = null;
  if (message) {
    list = document.createElement("ul");
    list.className = "errorlist";
    list.id = id;
    const item = document.createElement("li");
    item.textContent = message;
    list.append(item);
    input.before(list);
    input.setAttribute("aria-invalid", "true");
    describedBy.push(id);
  } else {
    input.removeAttribute("aria-invalid");
  }
  if (describedBy.length) input.setAttribute("aria-describedby", describedBy.join(" "));
  else input.removeAttribute("aria-describedby");
  return list;
}
function acceptsFile(input, file) {
  const accepted = input.accept ? input.accept.split(",").map((type) => type.trim()) : [];
  return accepted.length ? accepted.includes(file.type) : file.type.startsWith("image/");
}
// Too large, or no image at all (chosen in the picker, dropped or pasted): said next to the
// field, and the form is not sent.
function checkImageSize(input) {
  const max = Number(input.dataset.maxBytes);
  const file = input.files && input.files[0];
  const tooLarge = Boolean(max && file && file.size > max);
  const notImage = Boolean(file && input.dataset.notImage
    && (!acceptsFile(input, file) || input.dataset.unreadable));
  setFieldError(input, tooLarge ? input.dataset.tooLarge
    : notImage ? fill(input.dataset.notImage, { name: file.name }) : "");
  return tooLarge || notImage;
}
function imageTooLarge(form) {
  const inputs = [...form.querySelectorAll("input[type=file][data-max-bytes]")];
  const refused = inputs.filter(checkImageSize);
  if (refused.length) refused[0].focus();
  return refused.length > 0;
}
document.addEventListener("change", (event) => {
  if (event.target.matches("input[type=file][data-max-bytes]")) checkImageSize(event.target);
});
// htmx sends its forms itself (and has cancelled their submit event by now); a request
// stopped here is never sent.
document.addEventListener("htmx:beforeRequest", (event) => {
  const form = event.detail.elt;
  if (form instanceof HTMLFormElement && imageTooLarge(form)) event.preventDefault();
});
document.addEventListener("submit", (event) => {
  if (!event.defaultPrevented && event.target instanceof HTMLFormElement && imageTooLarge(event.target)) {
    event.preventDefault();
  }
});

// An image dropped on the image field's zone, or pasted (into the zone, or anywhere on the
// page but a text field), goes into the field's own file input: the preview, the size check
// and the form's sending (htmx or not) then work as for a file chosen in the picker.
const DROP_ZONE = "[data-drop-zone]";
const TEXT_FIELD = "textarea, [contenteditable], input:not([type=file], [type=checkbox], [type=radio], "
  + "[type=button], [type=submit], [type=reset], [type=range], [type=color])";

function takeImage(zone, file) {
  const input = zone.querySelector("input[type=file]");
  if (!input || !file) return;
  if (!acceptsFile(input, file)) {
    // Said at once (role=alert): a member who pasted with the keyboard hears it too.
    setFieldError(input, fill(input.dataset.notImage, { name: file.name })).setAttribute("role", "alert");
    return;
  }
  const transfer = new DataTransfer();
  transfer.items.add(file);
  input.files = transfer.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}
function dropZoneOf(event) {
  const zone = event.target instanceof Element ? event.target.closest(DROP_ZONE) : null;
  const carriesFiles = event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  return zone && carriesFiles && zone.classList.contains("ready") ? zone : null;
}
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    const zone = dropZoneOf(event);
    if (!zone) return;
    event.preventDefault(); // lets the file be dropped here
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
}
document.addEventListener("dragleave", (event) => {
  const zone = dropZoneOf(event);
  if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  const zone = dropZoneOf(event);
  if (!zone) return;
  event.preventDefault();
  zone.classList.remove("dragging");
  takeImage(zone, event.dataTransfer.files[0]);
});
document.addEventListener("paste", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const inZone = target && target.closest(DROP_ZONE);
  const zone = inZone || (!(target && target.closest(TEXT_FIELD)) && document.querySelector(`${DROP_ZONE}.ready`));
  const file = event.clipboardData && event.clipboardData.files[0];
  if (!zone || !zone.classList.contains("ready") || !file || document.querySelector("dialog[open]")) return;
  event.preventDefault();
  takeImage(zone, file);
});
function setUpDropZones(root) {
  if (typeof DataTransfer !== "function") return;
  for (const zone of root.querySelectorAll(DROP_ZONE)) {
    zone.classList.add("ready");
    for (const hint of zone.querySelectorAll(".drop-hint")) hint.hidden = false;
  }
}

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
function setUp(root) {
  setUpCopyButtons(root);
  setUpDropZones(root);
}
document.addEventListener("DOMContentLoaded", () => setUp(document));
// htmx:load fires for every piece of content htmx puts into the page.
document.addEventListener("htmx:load", (event) => setUp(event.target));

// The lightbox: a finished video large, with its prompt and actions, read from its card
// when opened; the arrow keys (and Previous/Next) step through the finished videos of the
// same list. Cards come and go with htmx (polls, new jobs, history pages and filters), so
// everything here is delegated and found in the page when needed. Without JavaScript,
// "View large" is the link to the video's page.
(() => {
  const TRIGGER = "a[data-lightbox-open]";
  let shownCard = null; // the id of the card shown (a polled card is replaced, its id stays)
  let opener = null;
  let openerCard = null;

  const lightbox = () => document.getElementById("lightbox");
  const finishedCards = (card) => [...(card.closest(".job-list") || document).querySelectorAll(".job-card")]
    .filter((each) => each.querySelector(TRIGGER) && each.querySelector("video"));
  const stopVideo = (video) => {
    video.pause();
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load(); // lets go of the file
  };

  function copyLink(link, from) {
    if (!link) return; // a guest's lightbox has no Remix
    link.hidden = !from;
    if (from) link.href = from.href;
    else link.removeAttribute("href");
  }

  function show(box, card) {
    const cards = finishedCards(card);
    const index = cards.indexOf(card);
    const source = card.querySelector("video");
    const video = box.querySelector("video");
    const prompt = card.querySelector(".prompt a");
    stopVideo(video);
    // Read as the card has them now (its poster frame, where it has one).
    if (source.poster) video.poster = source.poster;
    video.src = source.currentSrc || source.src;
    video.play().catch(() => {}); // a browser that does not start it leaves the controls to the member
    box.querySelector("#lightbox-prompt").textContent = prompt ? prompt.textContent.trim() : "";
    const params = card.querySelector(".params-line");
    box.querySelector("[data-lightbox-params]").textContent = params ? params.textContent.replace(/\s+/g, " ").trim() : "";
    copyLink(box.querySelector("[data-lightbox-detail]"), prompt);
    copyLink(box.querySelector("[data-lightbox-download]"), card.querySelector("a[data-download]"));
    copyLink(box.querySelector("[data-lightbox-remix]"), card.querySelector("a[data-remix]"));
    box.querySelector("[data-lightbox-position]").textContent = cards.length > 1
      ? fill(box.dataset.position, { n: index + 1, total: cards.length }) : "";
    for (const button of box.querySelectorAll("[data-lightbox-step]")) {
      const to = index + Number(button.dataset.lightboxStep);
      button.hidden = cards.length < 2;
      // aria-disabled, not disabled: a button stays focusable at the end of the list.
      button.setAttribute("aria-disabled", String(to < 0 || to >= cards.length));
    }
    shownCard = card.id;
  }

  function step(box, delta) {
    const card = document.getElementById(shownCard);
    if (!card) return;
    const cards = finishedCards(card);
    const next = cards[cards.indexOf(card) + delta];
    if (next) show(box, next);
  }

  document.addEventListener("click", (event) => {
    const box = lightbox();
    const target = event.target instanceof Element ? event.target : null;
    if (!box || !target || typeof box.showModal !== "function") return;
    const trigger = target.closest(TRIGGER);
    if (trigger) {
      // A new tab or window is asked for as with any link.
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      const card = trigger.closest(".job-card");
      if (!card || !card.querySelector("video")) return;
      event.preventDefault();
      for (const video of document.querySelectorAll(".job-card video")) video.pause();
      opener = trigger;
      openerCard = card.id;
      show(box, card);
      box.showModal();
      return;
    }
    if (!box.open) return;
    const stepButton = target.closest("[data-lightbox-step]");
    if (stepButton && stepButton.getAttribute("aria-disabled") !== "true") {
      step(box, Number(stepButton.dataset.lightboxStep));
    } else if (target.closest("[data-lightbox-close]") || target === box) {
      box.close(); // the dialog itself is hit only outside its content: the backdrop
    }
  });

  document.addEventListener("keydown", (event) => {
    const box = lightbox();
    if (!box || !box.open || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const delta = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (!delta) return;
    event.preventDefault();
    step(box, delta);
  });

  // Escape, Close or the backdrop: the video stops, and focus goes back to what opened it
  // (or, where a poll replaced that card, to the same card's trigger).
  document.addEventListener("close", (event) => {
    const box = lightbox();
    if (event.target !== box) return;
    stopVideo(box.querySelector("video"));
    const card = document.getElementById(openerCard);
    const back = opener && opener.isConnected ? opener : card && card.querySelector(TRIGGER);
    if (back) back.focus();
    opener = null;
  }, true);
})();

// The history's search box asks as the member types (its "input" trigger). Its
// "change" on leaving the box would ask the same again and swap the results just as
// the member clicks a link in them, losing the click: it does not reach the form.
document.addEventListener("change", (event) => {
  if (event.target.matches("form.filters input[type=search]")) event.stopPropagation();
}, true);

// Newer and Older bring their page of the history in place of the list: the view and the
// focus go to its top (they would stay at the bottom, by the link, of a long page).
let pageAsked = false;
document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt.closest && event.detail.elt.closest(".pagination")) pageAsked = true;
});
document.addEventListener("htmx:afterSettle", (event) => {
  const results = event.target;
  if (!pageAsked || !(results instanceof Element) || results.id !== "results") return;
  pageAsked = false;
  const top = results.querySelector("p") || results;
  top.tabIndex = -1;
  top.focus({ preventScroll: true });
  results.scrollIntoView({ block: "start" });
});

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
    // A batch finishing at once would stack toasts over the page's buttons: the three
    // newest stay (each finished job is on its card and in the history anyway).
    while (toasts.children.length >= 3) toasts.firstElementChild.remove();
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
        if (data.started && data.started.length) {
          document.dispatchEvent(new CustomEvent("portal:started", { detail: data.started }));
        }
      }
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
    setTimeout(check, document.hidden ? 15000 : 5000);
  }
  check();
})();

// How long running jobs have been going, ticking every second, and how far along their
// progress bars are. The server writes the first values; ticking here keeps a polled
// card's HTML the same from one poll to the next, so the browser can revalidate it
// (ETag, answered 304) instead of fetching it. A bar's expected time (data-expected-seconds,
// from the job's creation) is fixed when the job is submitted.
(() => {
  const body = document.body;
  if (!body || !body.dataset.elapsedFormats) return;
  const [secondsOnly, minutes, hours] = JSON.parse(body.dataset.elapsedFormats);
  // The server's clock, not this machine's: the offset measured when the page came.
  const offset = Date.parse(body.dataset.since) - Date.now();
  const words = (s) => s < 60 ? fill(secondsOnly, { s })
    : s < 3600 ? fill(minutes, { m: Math.floor(s / 60), s: s % 60 })
    : fill(hours, { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  const progress = (bar, now) => {
    const expected = Number(bar.dataset.expectedSeconds);
    const since = Date.parse(bar.dataset.progressSince);
    if (!expected || Number.isNaN(since)) return;
    const s = Math.max(0, (now - since) / 1000);
    bar.value = Math.min(s, expected);
    const text = document.getElementById(bar.getAttribute("aria-describedby"));
    if (!text) return;
    // Rounded up to 5 s: a countdown by the second promises more than the estimate knows.
    const left = Math.ceil((expected - s) / 5) * 5;
    const [leftFormat, late] = JSON.parse(text.dataset.formats);
    text.textContent = left > 0 ? fill(leftFormat, { t: words(left) }) : late;
  };
  const tick = () => {
    const now = Date.now() + offset;
    for (const element of document.querySelectorAll("[data-elapsed-since]")) {
      const since = Date.parse(element.dataset.elapsedSince);
      if (Number.isNaN(since)) continue;
      element.textContent = words(Math.max(0, Math.floor((now - since) / 1000)));
    }
    for (const bar of document.querySelectorAll("progress[data-expected-seconds]")) progress(bar, now);
  };
  setInterval(tick, 1000);
  document.addEventListener("htmx:load", tick);
})();

// The reader's time zone, so that the server shows times in it (pixverse_site/middleware.py),
// unless the member chose one on their account page.
(() => {
  const cookies = new Map(document.cookie.split("; ").filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
  if (cookies.has("portal_tz_chosen")) return;
  let zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (error) { return; }
  if (!/^[A-Za-z0-9_+\-/]+$/.test(zone) || cookies.get("portal_tz") === zone) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `portal_tz=${zone}; path=/; max-age=31536000; SameSite=Lax${secure}`;
})();

function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  // Emptied first, so the same words said twice are heard twice.
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// After a video form is sent with htmx: a started video clears the earlier messages next
// to the fields, keeps the focus on the button (which htmx disabled while sending) and is
// announced. A refused one comes back in the form's place (400, or 413 for the image
// field): the focus moves to the first field to fix, and the refusal is announced.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!(form instanceof HTMLFormElement) || !form.matches(".generation-form")) return;
  if (!event.detail.xhr || event.detail.xhr.status !== 200) return;
  // Sent to sign in (the session ended): nothing was started, the draft is kept.
  if (event.detail.xhr.getResponseHeader("HX-Redirect")) return;
  forgetDraft(form);
  for (const list of form.querySelectorAll(".errorlist, .error-box")) list.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  for (const group of form.querySelectorAll(".has-error")) group.classList.remove("has-error");
  announce(form.dataset.started);
  // The estimate asks again: what is left of a key's monthly limit has just changed.
  const params = form.querySelector(".params[hx-get]");
  if (params && window.htmx) window.htmx.trigger(params, "change");
  const button = form.querySelector("button[type=submit]");
  const lost = () => !document.activeElement || document.activeElement === document.body;
  // htmx gives the disabled button back after this event.
  if (button) setTimeout(() => { if (lost() || document.activeElement === button) button.focus(); }, 0);
});
document.addEventListener("htmx:afterSettle", (event) => {
  const swapped = event.detail.elt;
  const form = swapped instanceof Element && swapped.closest(".generation-form");
  if (!form || !event.detail.xhr || event.detail.xhr.status < 400) return;
  announce(form.dataset.refused);
  if (document.activeElement && document.activeElement !== document.body) return;
  const invalid = form.querySelector("[aria-invalid=true]");
  if (invalid) {
    invalid.focus();
    return;
  }
  // Refused as a whole (the balance, a limit, files too large together): the message at the
  // top of the form may be far above the button that was pressed; it is brought into view.
  const message = form.querySelector(".error-box");
  if (message) {
    message.tabIndex = -1;
    message.focus({ preventScroll: true });
    message.scrollIntoView({ block: "center" });
  }
});

// A refused form comes back in its own place with new, empty file inputs (a page cannot
// fill a file input): the files the member chose go into them again, and their previews
// follow. Not into a field the server found fault with: that file is the one to replace.
const keptFiles = new Map(); // a form's id -> its chosen files, by input name
document.addEventListener("htmx:beforeSwap", (event) => {
  const form = event.detail.target;
  if (!(form instanceof HTMLFormElement) || !form.matches(".generation-form") || !form.id) return;
  const files = new Map();
  for (const input of form.querySelectorAll("input[type=file][name]")) {
    if (input.files && input.files.length) files.set(input.name, input.files);
  }
  keptFiles.set(form.id, files);
});
document.addEventListener("htmx:afterSwap", () => {
  for (const [id, files] of keptFiles) {
    keptFiles.delete(id);
    const form = document.getElementById(id);
    if (!form) continue;
    for (const [name, chosen] of files) {
      const input = form.querySelector(`input[type=file][name="${CSS.escape(name)}"]`);
      if (!input || input.getAttribute("aria-invalid") === "true" || input.files.length) continue;
      input.files = chosen;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
});

// One card per job: a job can arrive twice (the form's answer and the other-tab check below).
document.addEventListener("htmx:afterSettle", () => {
  const seen = new Set();
  for (const card of document.querySelectorAll("#job-list > .job-card")) {
    if (seen.has(card.id)) card.remove();
    else seen.add(card.id);
  }
});

// Jobs the member started in another tab or window join this dashboard's list
// (their ids come with the activity check above, in the "portal:started" event).
document.addEventListener("portal:started", (event) => {
  const list = document.querySelector("#job-list[data-own-jobs]");
  if (!list || !window.htmx) return;
  for (const job of event.detail) {
    if (document.getElementById(job.id)) continue;
    window.htmx.ajax("GET", job.card, { target: list, swap: "afterbegin" });
  }
});

// A poll for a job that is gone (deleted or made private elsewhere) is answered 404 with a
// card saying so (X-Job-Gone): it takes the old card's place, which stops the polling.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr && xhr.status === 404 && xhr.getResponseHeader("X-Job-Gone")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Finished videos load nothing (preload="none", the poster in data-poster) until they come
// near the viewport: then their poster and first bytes (metadata, for the length and a
// quick start). A dashboard of two dozen videos fetches only those the member sees.
(() => {
  const wake = (video) => {
    if (video.dataset.poster && !video.poster) video.poster = video.dataset.poster;
    if (video.preload === "none") video.preload = "metadata";
  };
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        wake(entry.target);
      }
    }, { rootMargin: "300px 0px" })
    : null;
  const watch = (root) => {
    for (const video of root.querySelectorAll("video[data-lazy-video]")) {
      if (observer) observer.observe(video); else wake(video);
    }
  };
  document.addEventListener("DOMContentLoaded", () => watch(document));
  document.addEventListener("htmx:load", (event) => watch(event.target));
})();

// Where there is a mouse, a finished video plays muted while the pointer is over it (a
// preview); a click on it then plays it on with sound. Touch devices just use the controls.
if (window.matchMedia && window.matchMedia("(hover: hover) and (pointer: fine)").matches) {
  const previewed = (event) => {
    const target = event.target;
    return target instanceof HTMLVideoElement && target.matches("[data-lazy-video]") ? target : null;
  };
  document.addEventListener("pointerenter", (event) => {
    const video = previewed(event);
    if (!video || !video.paused || video.dataset.watched) return;
    video.dataset.preview = "1";
    video.muted = true;
    video.play().catch(() => {});
  }, true);
  document.addEventListener("pointerleave", (event) => {
    const video = previewed(event);
    if (!video || !video.dataset.preview) return;
    delete video.dataset.preview;
    video.pause();
    video.muted = false;
  }, true);
  document.addEventListener("click", (event) => {
    const video = previewed(event);
    if (!video || !video.dataset.preview) return;
    // The click would pause the preview: it means "watch this", with sound.
    event.preventDefault();
    delete video.dataset.preview;
    video.dataset.watched = "1";
    video.muted = false;
    setTimeout(() => { if (video.paused) video.play().catch(() => {}); }, 0);
  }, true);
}
