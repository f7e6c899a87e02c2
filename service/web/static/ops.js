// The console's actions. Each is a fetch() with the bearer token from sessionStorage: the
// page cookie alone can drive no action, so another site cannot forge one (CSRF).
(function () {
  "use strict";
  var FOLLOW_MIN_MS = 500;
  var FOLLOW_MAX_MS = 5000;
  var announce = document.getElementById("announce");

  function say(element, text) {
    if (element) {
      element.textContent = text;
    }
    if (announce) {
      announce.textContent = text;
    }
  }

  function send(method, url, body) {
    var headers = window.Rift.authHeaders(body ? {"Content-Type": "application/json"} : {});
    return fetch(url, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (payload) {
        return {ok: response.ok, status: response.status, body: payload};
      });
    });
  }

  var canAct = Boolean(window.Rift.token());
  if (!canAct) {
    var note = document.getElementById("readonly-note");
    if (note) {
      note.hidden = false;
    }
  }

  // Review decisions.
  document.querySelectorAll(".decision-form").forEach(function (form) {
    var message = form.querySelector(".status-message");
    var reason = form.querySelector("textarea");
    var reasonError = form.querySelector(".field-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var decision = event.submitter ? event.submitter.value : "";
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      reasonError.hidden = true;
      reason.removeAttribute("aria-invalid");
      send("POST", form.dataset.decisionUrl, {
        decision: decision,
        reason: reason.value,
        version: Number(form.dataset.version),
      }).then(function (result) {
        if (result.ok) {
          say(message, "Done: the rift is now " + result.body.status.replace(/_/g, " ").toLowerCase() + ".");
          form.dataset.version = String(result.body.version);
          if (result.body.status === "UNDER_REVIEW") {
            buttons.forEach(function (b) { b.disabled = false; });
          }
          return;
        }
        buttons.forEach(function (b) { b.disabled = false; });
        if (result.body.field === "reason") {
          reasonError.textContent = result.body.message;
          reasonError.hidden = false;
          reason.setAttribute("aria-invalid", "true");
          reason.focus();
          say(null, result.body.message);
        } else {
          say(message, result.body.message || "The decision was refused (" + result.status + ").");
        }
      });
    });
  });

  // Following a job after a retry, until it is final.
  function follow(jobId, stateCell, message) {
    var delay = FOLLOW_MIN_MS;
    function poll() {
      send("GET", "/api/jobs/" + encodeURIComponent(jobId)).then(function (result) {
        if (result.ok) {
          stateCell.textContent = result.body.state;
          stateCell.className = "state state-" + result.body.state;
          var attempts = document.getElementById("job-attempts");
          if (attempts && stateCell.id === "job-state") {
            attempts.textContent = String(result.body.attempts);
          }
          if (["SUCCEEDED", "FAILED", "DEAD"].indexOf(result.body.state) >= 0) {
            say(message, "Job " + jobId.slice(0, 8) + " " + result.body.state.toLowerCase() + ".");
            return;
          }
        }
        delay = Math.min(delay * 1.5, FOLLOW_MAX_MS);
        window.setTimeout(poll, delay);
      });
    }
    window.setTimeout(poll, delay);
  }

  document.querySelectorAll(".retry-job").forEach(function (button) {
    button.addEventListener("click", function () {
      var jobId = button.dataset.jobId;
      var message = document.getElementById("job-status-message") ||
          document.getElementById("retry-all-status");
      button.disabled = true;
      send("POST", "/api/admin/jobs/" + encodeURIComponent(jobId) + "/retry").then(function (result) {
        var stateCell = document.getElementById("job-state") ||
            document.querySelector('[data-job-state="' + jobId + '"]');
        if (!result.ok) {
          button.disabled = false;
          say(message, result.body.message || "The retry was refused (" + result.status + ").");
          return;
        }
        say(message, "Job " + jobId.slice(0, 8) + " is queued again.");
        if (stateCell) {
          stateCell.textContent = result.body.state;
          follow(jobId, stateCell, message);
        }
      });
    });
  });

  // Retry everything the filter matches, after a confirmation that names the number.
  var retryAll = document.getElementById("retry-all");
  if (retryAll) {
    var confirmBox = document.getElementById("retry-all-confirm");
    var status = document.getElementById("retry-all-status");
    retryAll.addEventListener("click", function () {
      confirmBox.hidden = false;
      confirmBox.focus();
    });
    document.getElementById("retry-all-no").addEventListener("click", function () {
      confirmBox.hidden = true;
      retryAll.focus();
    });
    document.getElementById("retry-all-yes").addEventListener("click", function () {
      var body = JSON.parse(retryAll.dataset.filter);
      body.confirmed_count = Number(retryAll.dataset.count);
      confirmBox.hidden = true;
      retryAll.disabled = true;
      send("POST", "/api/admin/jobs/retry", body).then(function (result) {
        if (result.ok) {
          say(status, result.body.retried + " jobs are queued again. Reload to see where they stand.");
          return;
        }
        retryAll.disabled = false;
        say(status, result.body.message || "The retry was refused (" + result.status + ").");
        retryAll.focus();
      });
    });
  }
  if (canAct) {
    window.Rift.enableScripted();
  }
})();
