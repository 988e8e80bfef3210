// Fleet Console's own script: dialogs, searchable selects, toasts. No inline scripts anywhere
// (the Content-Security-Policy forbids them), so every behaviour is wired up here.
(function () {
  "use strict";

  // Opens swapped-in dialogs and focuses their first (or first invalid) field. A region swapped
  // inside an open dialog (say a live preview) leaves the focus where the person is typing.
  function openDialogs(root, refocus) {
    root.querySelectorAll("dialog[data-modal]").forEach(function (dialog) {
      var opening = !dialog.open;
      if (opening) dialog.showModal();
      if (!opening && refocus === false) return;
      var focus = dialog.querySelector("[autofocus], .errorlist ~ input, input:not([type=hidden]), select, textarea, button");
      var invalid = dialog.querySelector("[aria-invalid=true]");
      (invalid || focus || dialog).focus();
    });
  }

  // The control that opened the dialog gets the focus back when it closes; if a refresh has
  // replaced it meanwhile, its successor (the element with the same hx-get) does.
  var opener = null;
  function rememberOpener(elt) {
    opener = { elt: elt, url: elt.getAttribute("hx-get"), until: 0 };
  }
  function dialogClosed() {
    if (opener) opener.until = Date.now() + 3000;
    restoreFocus();
  }
  function restoreFocus() {
    if (!opener || Date.now() > opener.until) return;
    var active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    var target = opener.elt.isConnected ? opener.elt
      : opener.url && document.querySelector('[hx-get="' + CSS.escape(opener.url) + '"]');
    if (target) target.focus();
  }

  function closeDialogs() {
    document.querySelectorAll("#modal dialog").forEach(function (dialog) { dialog.close(); });
    document.getElementById("modal").innerHTML = "";
    dialogClosed();
  }

  function initSelects(root) {
    if (!window.TomSelect) return;
    root.querySelectorAll("select[data-tom-select]").forEach(function (select) {
      if (select.tomselect) return;
      // Tom Select points the <label> at its own search box; the hidden <select> keeps a name.
      var label = select.id && document.querySelector('label[for="' + select.id + '"]');
      if (label && !select.hasAttribute("aria-label")) select.setAttribute("aria-label", label.textContent.trim());
      var creatable = select.hasAttribute("data-create");
      var pattern = creatable ? new RegExp(select.getAttribute("data-create")) : null;
      new TomSelect(select, {
        plugins: ["remove_button"],
        create: creatable ? function (input) {
          var name = input.trim().toLowerCase();
          return { value: name, text: name };
        } : false,
        // Group names are lowercase: "Night-Shift" offers to create night-shift.
        createFilter: creatable ? function (input) { return pattern.test(input.trim().toLowerCase()); } : null,
        render: {
          option_create: function (data, escape) {
            return '<div class="create">Create group <strong>' + escape(data.input.trim().toLowerCase()) + "</strong></div>";
          },
          item: function (data, escape) {
            var color = /^#[0-9a-f]{6}$/i.test(data.color || "") ? ' style="--pill: ' + data.color + '"' : "";
            return '<div class="pill"' + color + ">" + escape(data.text) + "</div>";
          },
          no_results: function (data, escape) {
            var why = creatable
              ? "New group names use lowercase letters, digits, - and _ only (at most 64)."
              : select.hasAttribute("data-restricted") ? "You can choose only the groups you are a member of." : "";
            return '<div class="no-results">No group matches “' + escape(data.input) + "”." + (why ? " " + why : "") + "</div>";
          }
        },
        // Clear the typed search once a group is picked, ready for the next one.
        onItemAdd: function () { this.setTextboxValue(""); this.refreshOptions(false); }
        // Tom Select already fires "change" on the <select> itself: no extra dispatch here, or
        // every filter change would reach the server twice.
      });
      if (select.hasAttribute("autofocus")) select.tomselect.focus();
    });
  }

  // A popover, so that it shows above an open modal dialog too; an error stays longer and is
  // announced at once.
  function showToast(text, isError) {
    var toast = document.getElementById("toast");
    if (!toast || !text) return;
    toast.textContent = text;
    toast.classList.toggle("error", !!isError);
    toast.setAttribute("role", isError ? "alert" : "status");
    toast.hidden = false;
    if (toast.showPopover) { if (toast.matches(":popover-open")) toast.hidePopover(); toast.showPopover(); }
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(hideToast, isError ? 10000 : 4000);
  }
  function hideToast() {
    var toast = document.getElementById("toast");
    if (toast.hidePopover && toast.matches(":popover-open")) toast.hidePopover();
    toast.hidden = true;
  }

  // What a refused or failed htmx request says: the server's own words when it sent text
  // (console/errors.py), else what the status means.
  function failureMessage(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("text/plain") === 0 && xhr.responseText) return xhr.responseText.slice(0, 400);
    if (xhr.status === 403) return "You do not have permission to do that.";
    if (xhr.status === 404) return "Not found: it may have been deleted. Reload the page.";
    if (xhr.status === 413) return "That is too large to send.";
    if (xhr.status >= 500) return "Something went wrong on our side (error " + xhr.status + "). Nothing was changed; try again.";
    return "The request failed (error " + xhr.status + "). Reload the page and try again.";
  }

  // Selection state of a bulk-action table: the count, "select all on this page" and the offer
  // to select every device matching the filter (sent as all=1 with the filter, never as ids).
  function updateSelection(form) {
    var boxes = form.querySelectorAll("input[data-row-select]");
    var checked = form.querySelectorAll("input[data-row-select]:checked").length;
    var whole = boxes.length > 0 && checked === boxes.length;
    var all = form.querySelector("[data-all-matching]");
    var page = form.querySelector("[data-select-page]");
    if (page) { page.checked = whole; page.indeterminate = checked > 0 && !whole; }
    if (all && !whole) all.value = "";
    var matching = !!all && all.value === "1";
    var offer = form.querySelector("[data-select-all-offer]");
    var done = form.querySelector("[data-select-all-done]");
    if (offer) offer.hidden = !whole || matching;
    if (done) done.hidden = !matching;
    var count = form.querySelector("[data-selection-count]");
    var total = form.dataset.total || "0";
    if (count) count.textContent = matching ? "All " + total + " devices selected" : checked ? checked + " selected" : "No devices selected";
    var edit = form.querySelector("[data-edit-groups]");
    if (edit) edit.disabled = checked === 0;
  }

  function initSelections(root) {
    var forms = root.querySelectorAll ? root.querySelectorAll("form") : [];
    if (root.matches && root.matches("form")) forms = [root];
    forms.forEach(function (form) { if (form.querySelector("input[data-row-select]")) updateSelection(form); });
  }

  // A table wider than a phone scrolls inside its wrapper: keyboard users must reach it too.
  function markScrollable(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth || wrap.hasAttribute("tabindex")) return;
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", "Table (scrolls sideways)");
    });
  }

  function syncSwatches(input) {
    input.parentNode.querySelectorAll("[data-swatch]").forEach(function (swatch) {
      swatch.setAttribute("aria-pressed", String(swatch.getAttribute("data-swatch") === input.value.toLowerCase()));
    });
  }
  document.addEventListener("input", function (event) {
    if (event.target.matches(".color-field input[type=color]")) syncSwatches(event.target);
  });

  document.documentElement.classList.add("js");

  document.addEventListener("DOMContentLoaded", function () {
    initSelects(document);
    initSelections(document);
    markScrollable(document);
    openDialogs(document);
  });

  document.addEventListener("selectionChanged", function (event) { updateSelection(event.target); });

  document.addEventListener("htmx:load", function (event) {
    initSelects(event.detail.elt);
    initSelections(event.detail.elt);
    markScrollable(event.detail.elt);
    var elt = event.detail.elt;
    if (elt.closest && elt.closest("#modal")) {
      var hasFields = elt.matches("dialog") || !!elt.querySelector("input:not([type=hidden]), select, textarea, button");
      openDialogs(document.getElementById("modal"), hasFields);
    }
  });

  document.addEventListener("closeModal", closeDialogs);
  document.addEventListener("showMessage", function (event) { showToast(event.detail && event.detail.value); });
  document.addEventListener("htmx:responseError", function (event) { showToast(failureMessage(event.detail.xhr), true); });
  document.addEventListener("htmx:sendError", function () {
    showToast("The server could not be reached. Check your connection and try again; nothing was changed.", true);
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target && target.id === "modal" && !event.detail.elt.closest("#modal")) rememberOpener(event.detail.elt);
  });
  document.addEventListener("htmx:afterSettle", restoreFocus);

  // A dialog closed with Escape or its Cancel button leaves nothing behind.
  document.addEventListener("close", function (event) {
    if (event.target.matches && event.target.matches("#modal dialog")) {
      document.getElementById("modal").innerHTML = "";
      dialogClosed();
    }
  }, true);
  document.addEventListener("click", function (event) {
    if (event.target.closest("#toast")) hideToast();
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.closest("nav").classList.toggle("open", open);
    }
    var swatch = event.target.closest("[data-swatch]");
    if (swatch) {
      var input = document.getElementById(swatch.getAttribute("aria-controls"));
      input.value = swatch.getAttribute("data-swatch");
      syncSwatches(input);
    }
    var cancel = event.target.closest("[data-close-dialog]");
    if (cancel) { event.preventDefault(); closeDialogs(); }
    var selectAll = event.target.closest("[data-select-all-matching], [data-clear-selection]");
    if (selectAll) {
      var form = selectAll.closest("form");
      var clear = selectAll.hasAttribute("data-clear-selection");
      if (clear) form.querySelectorAll("input[data-row-select]").forEach(function (box) { box.checked = false; });
      form.querySelector("[data-all-matching]").value = clear ? "" : "1";
      updateSelection(form);
    }
  });

  // "Select all on this page" and the selection bar of bulk-action tables.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-page]")) {
      var form = target.closest("form");
      form.querySelectorAll("input[data-row-select]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches("[data-select-page], input[data-row-select]")) {
      target.closest("form").dispatchEvent(new CustomEvent("selectionChanged", { bubbles: true }));
    }
  });
})();
