// The proof page: poll the progress section until its state is final, and submit proof.
(function () {
  "use strict";
  var MIN_DELAY_MS = 500;
  var MAX_DELAY_MS = 10000;
  var BACKOFF = 1.6;
  var FIELDS = ["files", "license_key", "tracking_number", "url", "text"];

  var progress = document.getElementById("progress");
  var announce = document.getElementById("announce");
  if (!progress) {
    return;
  }
  var etag = progress.dataset.etag || "";
  var delay = MIN_DELAY_MS;
  var timer = null;

  function body() {
    return progress.querySelector(".progress-body");
  }

  function schedule() {
    window.clearTimeout(timer);
    var current = body();
    if (current && current.dataset.final === "true") {
      timer = null;
      return;
    }
    // A tab nobody looks at does not poll; it catches up as soon as it is shown again.
    if (document.hidden) {
      timer = null;
      return;
    }
    timer = window.setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", function () {
    var current = body();
    var final = current && current.dataset.final === "true";
    if (!document.hidden && timer === null && !final) {
      delay = MIN_DELAY_MS;
      poll();
    }
  });

  function slowDown() {
    delay = Math.min(Math.round(delay * BACKOFF), MAX_DELAY_MS);
  }

  function show(html) {
    var history = progress.querySelector("details.history");
    var historyOpen = history ? history.open : false;
    var before = body() ? body().dataset.summary : "";
    // Server-rendered and autoescaped by the same template as the full page.
    progress.innerHTML = html;
    var after = body();
    var again = progress.querySelector("details.history");
    if (again) {
      again.open = historyOpen;
    }
    if (after && after.dataset.summary !== before && announce) {
      announce.textContent = after.dataset.summary;
    }
    var section = document.getElementById("submit-section");
    if (section && after) {
      section.hidden = after.dataset.canSubmit !== "true";
      if (after.dataset.status !== "not_started") {
        document.getElementById("submit-heading").textContent = "Send new proof";
      }
    }
  }

  function poll() {
    var headers = window.Rift.authHeaders(etag ? {"If-None-Match": '"' + etag + '"'} : {});
    fetch(progress.dataset.progressUrl, {headers: headers, cache: "no-store", credentials: "same-origin"})
      .then(function (response) {
        if (response.status === 304) {
          slowDown();
          return null;
        }
        if (!response.ok) {
          slowDown();
          return null;
        }
        etag = (response.headers.get("ETag") || "").replace(/^W\//, "").replace(/"/g, "");
        return response.text().then(function (html) {
          show(html);
          delay = MIN_DELAY_MS;
        });
      })
      .catch(slowDown)
      .then(schedule);
  }

  function restartPolling() {
    delay = MIN_DELAY_MS;
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, MIN_DELAY_MS);
  }

  schedule();

  // Submitting proof.
  var form = document.getElementById("proof-form");
  if (!form) {
    return;
  }
  var fileInput = document.getElementById("files");
  var fileList = document.getElementById("file-list");
  var dropZone = document.getElementById("drop-zone");
  var button = document.getElementById("submit-button");
  var upload = document.getElementById("upload");
  var bar = document.getElementById("upload-progress");
  var percent = document.getElementById("upload-percent");
  var formError = document.getElementById("form-error");
  var idempotencyKey = null;
  var inFlight = false;

  if (!window.Rift.token()) {
    document.getElementById("readonly-note").hidden = false;
  }

  function listFiles() {
    fileList.textContent = "";
    Array.prototype.forEach.call(fileInput.files, function (file) {
      var item = document.createElement("li");
      item.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
      fileList.appendChild(item);
    });
  }

  function newFill() {
    // A changed form is a new submission: it must not reuse the last attempt's key.
    idempotencyKey = null;
  }

  fileInput.addEventListener("change", function () {
    listFiles();
    newFill();
  });
  form.addEventListener("input", newFill);

  ["dragenter", "dragover"].forEach(function (name) {
    dropZone.addEventListener(name, function (event) {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    dropZone.addEventListener(name, function () {
      dropZone.classList.remove("dragging");
    });
  });
  dropZone.addEventListener("drop", function (event) {
    event.preventDefault();
    var merged = new DataTransfer();
    Array.prototype.forEach.call(fileInput.files, function (f) { merged.items.add(f); });
    Array.prototype.forEach.call(event.dataTransfer.files, function (f) { merged.items.add(f); });
    fileInput.files = merged.files;
    listFiles();
    newFill();
  });

  function clearErrors() {
    FIELDS.forEach(function (name) {
      var error = document.getElementById(name + "-error");
      error.hidden = true;
      error.textContent = "";
      document.getElementById(name).removeAttribute("aria-invalid");
    });
    formError.hidden = true;
    formError.textContent = "";
  }

  function showError(status, problem) {
    var field = problem && problem.field;
    var message = (problem && problem.message) || ("The server refused the proof (" + status + ").");
    if (!field && (status === 413 || status === 415)) {
      field = "files";
    }
    if (FIELDS.indexOf(field) >= 0) {
      var error = document.getElementById(field + "-error");
      var input = document.getElementById(field);
      error.textContent = message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } else {
      formError.textContent = message;
      formError.hidden = false;
      formError.setAttribute("tabindex", "-1");
      formError.focus();
    }
    if (announce) {
      announce.textContent = "Not submitted: " + message;
    }
  }

  function finish() {
    inFlight = false;
    button.disabled = false;
    button.removeAttribute("aria-busy");
    upload.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (inFlight) {
      return;
    }
    clearErrors();
    var data = new FormData();
    Array.prototype.forEach.call(fileInput.files, function (file) {
      data.append("files", file, file.name);
    });
    FIELDS.slice(1).forEach(function (name) {
      var value = document.getElementById(name).value.trim();
      if (value) {
        data.append(name, value);
      }
    });
    if (!idempotencyKey) {
      idempotencyKey = window.crypto.randomUUID();
    }
    inFlight = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    bar.value = 0;
    percent.textContent = "0%";
    upload.hidden = false;

    var request = new XMLHttpRequest();
    request.open("POST", form.dataset.submitUrl);
    request.setRequestHeader("Authorization", "Bearer " + window.Rift.token());
    request.setRequestHeader("Idempotency-Key", idempotencyKey);
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        var done = Math.round((e.loaded / e.total) * 100);
        bar.value = done;
        percent.textContent = done + "%";
      }
    });
    request.addEventListener("load", function () {
      finish();
      if (request.status === 202) {
        form.reset();
        listFiles();
        idempotencyKey = null;
        if (announce) {
          announce.textContent = "Proof received. Checking it now.";
        }
        restartPolling();
        return;
      }
      var problem = null;
      try {
        problem = JSON.parse(request.responseText);
      } catch (e) {
        problem = null;
      }
      showError(request.status, problem);
    });
    request.addEventListener("error", function () {
      finish();
      showError(0, {message: "The upload did not reach the server. Check your connection and submit again."});
    });
    request.send(data);
  });
  if (window.Rift.token()) {
    window.Rift.enableScripted();
  }
})();
