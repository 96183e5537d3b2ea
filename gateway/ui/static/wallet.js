// EU wallet page: asks the gateway every two seconds where the login stands, and moves on when
// the wallet on another device has answered (cross-device). Any other end (declined, refused,
// expired, answered on this device) reloads the page, which then says what happened. Without
// this script the page still works: the citizen uses its "Refresh the status" link.
(function () {
  "use strict";
  var root = document.getElementById("wallet");
  var status = root ? root.getAttribute("data-status") : null;
  if (status !== "pending" && status !== "fetched") {
    return;
  }
  var statusUrl = root.getAttribute("data-status-url");
  var message = document.getElementById("wallet-message");
  var refresh = document.getElementById("wallet-refresh");
  if (refresh) {
    refresh.hidden = true;
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        if (state.status === "complete") {
          window.location.assign(state.next);
        } else if (state.status === "pending" || state.status === "fetched") {
          if (message.textContent !== state.text) {
            message.textContent = state.text;
          }
          window.setTimeout(poll, 2000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        if (refresh) {
          refresh.hidden = false;
        }
        window.setTimeout(poll, 4000);
      });
  }

  window.setTimeout(poll, 2000);
})();
