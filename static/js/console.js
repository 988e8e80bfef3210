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

  function closeDialogs() {
    document.querySelectorAll("#modal dialog").forEach(function (dialog) { dialog.close(); });
    document.getElementById("modal").innerHTML = "";
  }

  function initSelects(root) {
    if (!window.TomSelect) return;
    root.querySelectorAll("select[data-tom-select]").forEach(function (select) {
      if (select.tomselect) return;
      var creatable = select.hasAttribute("data-create");
      new TomSelect(select, {
        plugins: ["remove_button"],
        create: creatable ? function (input) {
          var name = input.trim().toLowerCase();
          return { value: name, text: name };
        } : false,
        createFilter: creatable ? new RegExp(select.getAttribute("data-create")) : null,
        render: {
          option_create: function (data, escape) {
            return '<div class="create">Create group <strong>' + escape(data.input) + "</strong></div>";
          },
          no_results: function () { return '<div class="no-results">No matching group</div>'; }
        },
        // Clear the typed search once a group is picked, ready for the next one.
        onItemAdd: function () { this.setTextboxValue(""); this.refreshOptions(false); }
        // Tom Select already fires "change" on the <select> itself: no extra dispatch here, or
        // every filter change would reach the server twice.
      });
      if (select.hasAttribute("autofocus")) select.tomselect.focus();
    });
  }

  function showToast(text) {
    var toast = document.getElementById("toast");
    if (!toast || !text) return;
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function () { toast.hidden = true; }, 4000);
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

  document.documentElement.classList.add("js");

  document.addEventListener("DOMContentLoaded", function () {
    initSelects(document);
    initSelections(document);
    openDialogs(document);
  });

  document.addEventListener("selectionChanged", function (event) { updateSelection(event.target); });

  document.addEventListener("htmx:load", function (event) {
    initSelects(event.detail.elt);
    initSelections(event.detail.elt);
    var elt = event.detail.elt;
    if (elt.closest && elt.closest("#modal")) {
      var hasFields = elt.matches("dialog") || !!elt.querySelector("input:not([type=hidden]), select, textarea, button");
      openDialogs(document.getElementById("modal"), hasFields);
    }
  });

  document.addEventListener("closeModal", closeDialogs);
  document.addEventListener("showMessage", function (event) { showToast(event.detail && event.detail.value); });

  // A dialog closed with Escape or its Cancel button leaves nothing behind.
  document.addEventListener("close", function (event) {
    if (event.target.matches && event.target.matches("#modal dialog")) {
      document.getElementById("modal").innerHTML = "";
    }
  }, true);
  document.addEventListener("click", function (event) {
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
