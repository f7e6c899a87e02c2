// Sign-in from a link: the bearer token arrives in the URL fragment (#token=...), which the
// browser never sends to the server. Keep it in this tab's sessionStorage, strip it from
// the address bar and history, and trade it once for the page cookie (POST /session).
(function () {
  "use strict";
  var TOKEN_KEY = "rift.token";
  var TRIED_KEY = "rift.signin.tried";
  var RETRY_GUARD_MS = 10000;

  function storage() {
    try {
      return window.sessionStorage;
    } catch (e) {
      return null;
    }
  }

  function token() {
    var s = storage();
    return s ? s.getItem(TOKEN_KEY) : null;
  }

  function takeTokenFromFragment() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) {
      return null;
    }
    var found = new URLSearchParams(hash).get("token");
    // Strip the fragment whatever it held: it must not stay in history or be bookmarked.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    if (found && storage()) {
      storage().setItem(TOKEN_KEY, found);
    }
    return found;
  }

  function authHeaders(extra) {
    var headers = Object.assign({}, extra || {});
    var t = token();
    if (t) {
      headers.Authorization = "Bearer " + t;
    }
    return headers;
  }

  function say(text) {
    var status = document.getElementById("signin-status");
    if (status) {
      status.textContent = text;
    }
  }

  function exchange() {
    var s = storage();
    var tried = s ? Number(s.getItem(TRIED_KEY) || 0) : 0;
    if (Date.now() - tried < RETRY_GUARD_MS) {
      say("Signing in did not stick: this browser may refuse cookies for this site. " +
          "Allow them, then open the link again.");
      return;
    }
    if (s) {
      s.setItem(TRIED_KEY, String(Date.now()));
    }
    say("Signing you in…");
    fetch("/session", {method: "POST", headers: authHeaders(), credentials: "same-origin"})
      .then(function (response) {
        if (response.ok) {
          window.location.replace(window.location.pathname + window.location.search);
          return null;
        }
        return response.json().then(function (body) {
          if (s) {
            s.removeItem(TOKEN_KEY);
          }
          say((body && body.message ? body.message : "The sign-in link was refused") +
              ". Ask for a new sign-in link.");
        });
      })
      .catch(function () {
        say("The server did not answer. Check your connection and reload.");
      });
  }

  var fresh = takeTokenFromFragment();
  var onSignInPage = document.getElementById("signin-status") !== null;
  if (fresh || (onSignInPage && token())) {
    exchange();
  } else if (onSignInPage) {
    say("Open this page from your sign-in link. An operator prints one with " +
        "'rift link USER RIFT_ID'.");
  } else if (storage()) {
    storage().removeItem(TRIED_KEY);
  }

  // The controls a page's script drives are rendered disabled (data-scripted): clicked
  // before that script is bound, a form would submit natively (a GET with the proof in
  // the address) and the seller would see nothing happen. The script enables them once
  // its handlers are in place, and only for a signed-in tab.
  function enableScripted() {
    document.querySelectorAll("[data-scripted]").forEach(function (control) {
      control.disabled = false;
    });
  }

  window.Rift = {token: token, authHeaders: authHeaders, enableScripted: enableScripted};
})();
