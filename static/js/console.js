// Fleet Console's own script: dialogs, searchable selects, toasts. No inline scripts anywhere
// (the Content-Security-Policy forbids them), so every behaviour is wired up here.
(function () {
  "use strict";

  function openDialogs(root) {
    root.querySelectorAll("dialog[data-modal]").forEach(function (dialog) {
      if (!dialog.open) dialog.showModal();
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
        createFilter: creatable ? /^[a-z0-9_-]{1,64}$/ : null,
        render: {
          option_create: function (data, escape) {
            return '<div class="create">Create group <strong>' + escape(data.input) + "</strong></div>";
          },
          no_results: function () { return '<div class="no-results">No matching group</div>'; }
        },
        onChange: function () { select.dispatchEvent(new Event("change", { bubbles: true })); }
      });
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

  document.addEventListener("DOMContentLoaded", function () {
    initSelects(document);
    openDialogs(document);
  });

  document.addEventListener("htmx:load", function (event) {
    initSelects(event.detail.elt);
    if (event.detail.elt.closest && event.detail.elt.closest("#modal")) openDialogs(document.getElementById("modal"));
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
