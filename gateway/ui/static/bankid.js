// BankID order page: asks the gateway once a second for the order's state and the current QR
// code (BankID's animated QR), and moves on when the order completes or fails. Without this
// script the page still works: the citizen reloads it with its "Refresh" link.
(function () {
  "use strict";
  var root = document.getElementById("bankid");
  if (!root || root.getAttribute("data-status") !== "pending") {
    return;
  }
  var statusUrl = root.getAttribute("data-status-url");
  var message = document.getElementById("bankid-message");
  var qrArea = document.getElementById("bankid-qr-area");
  var qr = document.getElementById("bankid-qr");
  var phone = document.getElementById("bankid-phone");
  var refresh = document.getElementById("bankid-refresh");
  if (refresh) {
    refresh.hidden = true;
  }

  function show(state) {
    if (message.textContent !== state.text) {
      message.textContent = state.text;
    }
    if (state.qr) {
      qr.src = state.qr;
      qrArea.hidden = false;
    } else {
      qrArea.hidden = true;
    }
    if (phone && state.phone) {
      phone.href = state.phone;
    }
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
        } else if (state.status === "failed") {
          window.location.reload();
        } else {
          show(state);
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        if (refresh) {
          refresh.hidden = false;
        }
        window.setTimeout(poll, 3000);
      });
  }

  window.setTimeout(poll, 1000);
})();
