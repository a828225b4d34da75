/*
 * The Gift codes page's purchase form. The server does the work through the
 * REST API (/api/v1/gift-cards) with the session and the CSRF token: it
 * confirms the payment with the chosen saved card; Stripe.js only finishes
 * 3-D Secure when the bank asks. The card becomes active when Stripe says it
 * was paid; a bearer card's code is then shown here once.
 */
(function () {
  "use strict";

  var root = document.getElementById("gifts-root");
  var form = root && root.querySelector("[data-testid=buy-form]");
  if (!form) return;
  var csrfToken = root.getAttribute("data-csrf");
  var select = form.elements.payment_method;
  var errorBox = form.querySelector("[data-role=error]");
  var doneBox = form.querySelector("[data-role=done]");
  var submit = form.querySelector("[data-testid=buy-submit]");

  function sentence(text) {
    text = String(text || "").replace(/^[a-z_]+: /, "").trim();
    if (!text) return "";
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch("/api/v1/" + path, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var message = "Something went wrong (HTTP " + response.status + "). Please try again.";
        if (data && data.error && data.error.message) message = sentence(data.error.message);
        else if (data && typeof data === "object") {
          var first = Object.keys(data)[0];
          if (first) message = sentence(first + ": " + [].concat(data[first]).join(" "));
        }
        throw new Error(message);
      });
    }, function () {
      throw new Error("The network failed. Check your connection and try again.");
    });
  }

  function show(box, text) {
    box.textContent = text;
    box.hidden = !text;
  }

  var stripePromise = null;
  function getStripe() {
    if (!stripePromise) {
      stripePromise = new Promise(function (resolve, reject) {
        function ready() {
          if (typeof window.Stripe !== "function") { reject(new Error("Stripe.js did not load. Reload the page and try again.")); return; }
          resolve(window.Stripe(root.getAttribute("data-stripe-key")));
        }
        if (typeof window.Stripe === "function") { ready(); return; }
        var script = document.createElement("script");
        script.src = root.getAttribute("data-stripe-js");
        script.async = true;
        script.onload = ready;
        script.onerror = function () { reject(new Error("Stripe.js could not be loaded. Check your connection and try again.")); };
        document.head.appendChild(script);
      });
      stripePromise.catch(function () { stripePromise = null; });
    }
    return stripePromise;
  }

  api("GET", "payment-methods").then(function (cards) {
    select.textContent = "";
    if (!cards.length) {
      var none = document.createElement("option");
      none.value = "";
      none.textContent = "No saved card yet";
      select.appendChild(none);
      return;
    }
    cards.forEach(function (card) {
      var option = document.createElement("option");
      option.value = card.id;
      option.textContent = card.brand + " •••• " + card.last4 + " (" + card.exp_month + "/" + card.exp_year + ")";
      if (card["default"]) option.selected = true;
      select.appendChild(option);
    });
  }).catch(function (error) { show(errorBox, error.message); });

  function waitPaid(card, tries) {
    if (card.status !== "pending" || tries <= 0) return Promise.resolve(card);
    return new Promise(function (resolve) { setTimeout(resolve, 1000); }).then(function () {
      return api("GET", "gift-cards/" + card.id);
    }).then(function (next) { return waitPaid(next, tries - 1); });
  }

  function finish(card, code) {
    if (card.status === "failed") throw new Error("The payment failed. Try another card.");
    if (card.status === "pending") {
      show(doneBox, "Your payment is still being confirmed. The card appears in the list below once it is paid.");
      return;
    }
    if (card.recipient_email) {
      show(doneBox, "Paid. We are emailing the code to " + card.recipient_email + ".");
      return;
    }
    var shown = code ? Promise.resolve({ code: code }) : api("POST", "gift-cards/" + card.id + "/code");
    return shown.then(function (answer) {
      show(doneBox, "Paid. Your gift card's code, shown this once: " + answer.code);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(errorBox, "");
    show(doneBox, "");
    var body = { amount: form.elements.amount.value.trim() };
    var recipient = form.elements.recipient_email.value.trim();
    if (recipient) body.recipient_email = recipient;
    if (!select.value) { show(errorBox, "Save a card on the Billing page first."); return; }
    body.payment_method = select.value;
    submit.disabled = true;
    api("POST", "gift-cards", body).then(function (started) {
      if (started.status === "pending" && started.next_action) {
        return getStripe().then(function (stripe) {
          return stripe.confirmCardPayment(started.client_secret);
        }).then(function (result) {
          if (result.error) throw new Error(sentence(result.error.message) || "The payment was not confirmed.");
          return waitPaid(started, 10);
        }).then(function (card) { return finish(card, null); });
      }
      return waitPaid(started, started.code ? 0 : 10).then(function (card) { return finish(card, started.code); });
    }).catch(function (error) {
      show(errorBox, error.message);
    }).then(function () {
      submit.disabled = false;
    });
  });
})();
