// SAML HTTP-POST binding: send the signed message on without a click. Without JavaScript the
// page's Continue button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) {
    form.submit();
  }
})();
