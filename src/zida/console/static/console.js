// Zida console: sub-table rows, uploads with progress, the people picker, confirmations. No dependencies.
(function () {
  "use strict";
  var csrf = function () {
    var main = document.getElementById("main");
    return main ? main.getAttribute("data-csrf") : "";
  };

  // Sub-tables: add a row from the <template>, remove a row; row numbers only need to be distinct.
  var rowCounter = 1000;
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.hasAttribute("data-add-row")) {
      var table = target.closest("[data-table]");
      var template = table.querySelector("template");
      var html = template.innerHTML.split("__ROW__").join(String(rowCounter++));
      var body = table.querySelector("tbody");
      body.insertAdjacentHTML("beforeend", html);
      var first = body.lastElementChild.querySelector("input, select, textarea");
      if (first) first.focus();
    } else if (target.hasAttribute("data-remove-row")) {
      target.closest("tr").remove();
    } else if (target.hasAttribute("data-remove-file")) {
      target.closest("li").remove();
    }
  });

  // Attachments: each chosen file is uploaded at once; the form then carries its id.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
    var box = input.closest("[data-upload]");
    if (!box) return;
    Array.prototype.forEach.call(input.files, function (file) { upload(box, file); });
    input.value = "";
  });

  function upload(box, file) {
    var list = box.querySelector("ul");
    var progress = box.querySelector("progress");
    var item = document.createElement("li");
    var label = document.createElement("span");
    label.textContent = file.name;
    item.appendChild(label);
    list.appendChild(item);
    var data = new FormData();
    data.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", box.closest("form").action.replace(/\/forms\/.*$/, "/files"));
    xhr.setRequestHeader("x-csrf-token", csrf());
    progress.hidden = false;
    box.setAttribute("aria-busy", "true");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = function () {
      progress.hidden = true;
      box.removeAttribute("aria-busy");
      var answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
      if (xhr.status === 201 && answer.fileId) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = box.getAttribute("data-upload");
        hidden.value = answer.fileId;
        item.insertBefore(hidden, label);
        item.setAttribute("data-uploaded", answer.fileId);
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link";
        remove.setAttribute("data-remove-file", "");
        remove.textContent = "×";
        remove.setAttribute("aria-label", "remove " + file.name);
        item.appendChild(document.createTextNode(" "));
        item.appendChild(remove);
      } else {
        item.className = "field-error";
        item.setAttribute("role", "alert");
        label.textContent = file.name + ": " + (answer.error || ("HTTP " + xhr.status));
      }
    };
    xhr.onerror = function () {
      progress.hidden = true;
      item.className = "field-error";
      label.textContent = file.name + ": network error";
    };
    xhr.send(data);
  }

  // The people picker: suggestions of users whose name contains what was typed (the value is a user id).
  var timer = null;
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement)) return;
    // data-people: users by name; data-suggest: the URL of another search answering [{id, name}] (records to link)
    var source = input.hasAttribute("data-people") ? "/console/people" : input.getAttribute("data-suggest");
    if (!source || source.indexOf("/console/") !== 0) return;
    var words = input.value.split(/[\s,，;；]+/);
    var word = words[words.length - 1];
    clearTimeout(timer);
    if (!word) return;
    timer = setTimeout(function () {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", source + "?q=" + encodeURIComponent(word));
      xhr.onload = function () {
        if (xhr.status !== 200) return;
        var list = document.getElementById(input.getAttribute("list"));
        if (!list) return;
        list.textContent = "";
        JSON.parse(xhr.responseText).forEach(function (person) {
          var option = document.createElement("option");
          var before = words.slice(0, -1).join(", ");
          option.value = (before ? before + ", " : "") + person.id;
          option.label = person.name + " (" + person.id + ")";
          option.textContent = person.name + " (" + person.id + ")";
          list.appendChild(option);
        });
      };
      xhr.send();
    }, 200);
  });

  // The department picker: what is typed finds departments by name; the list shows the chosen ones and those found.
  var deptTimer = null;
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-departments-for")) return;
    var select = document.getElementById(input.getAttribute("data-departments-for"));
    var word = input.value.trim();
    clearTimeout(deptTimer);
    if (!select) return;
    if (!word) {
      Array.prototype.forEach.call(select.options, function (o) { o.hidden = false; });
      return;
    }
    deptTimer = setTimeout(function () {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", "/console/departments?q=" + encodeURIComponent(word));
      xhr.onload = function () {
        if (xhr.status !== 200) return;
        var found = {};
        JSON.parse(xhr.responseText).forEach(function (dept) {
          var value = String(dept.id);
          found[value] = true;
          var known = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
          if (!known) {
            var option = document.createElement("option");
            option.value = value;
            option.textContent = dept.name;
            select.appendChild(option);
          }
        });
        Array.prototype.forEach.call(select.options, function (o) {
          o.hidden = !(o.selected || o.value === "" || found[o.value]);
        });
      };
      xhr.send();
    }, 200);
  });

  // Forms and buttons that ask before they act (revoking a credential, terminating an approval).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    var button = event.submitter;
    var asked = button && button.getAttribute && button.getAttribute("data-confirm-button");
    if ((question && !window.confirm(question)) || (asked && !window.confirm(asked))) event.preventDefault();
  });
})();
