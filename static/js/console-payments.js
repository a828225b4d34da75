/*
 * AGIPower console: payments.
 *
 * Top Up, Auto Top-Up, billing details and saved cards, in dialogs, through the
 * REST API (/api/v1, the console session and its CSRF token). Cards are typed
 * into Stripe.js's card Element and saved with a SetupIntent (confirmCardSetup);
 * the server confirms top-ups with a saved card, and Stripe.js finishes 3-D
 * Secure when the answer is "requires_action". Credits come only from Stripe's
 * confirmation, checked by the server: this script only asks and shows.
 */
(function () {
  "use strict";

  // --- small helpers ---------------------------------------------------------

  function $(selector, within) {
    return (within || document).querySelector(selector);
  }

  function $$(selector, within) {
    return Array.prototype.slice.call((within || document).querySelectorAll(selector));
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  // --- money: exact, in BigInt cents and nanos (never floats) ----------------

  var NANOS_PER_CENT = 10000000n;
  var MIN_CENTS = 500n;
  var MAX_CENTS = 2500000n;

  /** "1,234.5" / "$100" / "100.00" -> cents (BigInt), or null. */
  function parseCents(text) {
    var match = /^\s*\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{0,2}))?\s*$/.exec(text || "");
    if (!match) return null;
    var whole = BigInt(match[1].replace(/,/g, ""));
    var cents = BigInt(((match[2] || "") + "00").slice(0, 2));
    return whole * 100n + cents;
  }

  /** An API amount ("120.000000000") -> nanos (BigInt). */
  function parseNanos(text) {
    var match = /^(-?)(\d+)(?:\.(\d{0,9}))?$/.exec(String(text || "0").trim());
    if (!match) return 0n;
    var nanos = BigInt(match[2]) * 1000000000n + BigInt(((match[3] || "") + "000000000").slice(0, 9));
    return match[1] ? -nanos : nanos;
  }

  function groupThousands(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** cents (BigInt) -> "$1,234.56" */
  function formatCents(cents) {
    var negative = cents < 0n;
    var abs = negative ? -cents : cents;
    var text = groupThousands((abs / 100n).toString()) + "." + (abs % 100n).toString().padStart(2, "0");
    return (negative ? "-$" : "$") + text;
  }

  /** nanos (BigInt) -> "$1,234.57", rounded half away from zero (as the server). */
  function formatNanos(nanos) {
    var negative = nanos < 0n;
    var abs = negative ? -nanos : nanos;
    var cents = (abs + NANOS_PER_CENT / 2n) / NANOS_PER_CENT;
    return formatCents(negative ? -cents : cents);
  }

  function formatUsd(apiAmount) {
    return formatNanos(parseNanos(apiAmount));
  }

  /** cents -> "100.00", as the API wants amounts (decimal strings). */
  function amountString(cents) {
    return (cents / 100n).toString() + "." + (cents % 100n).toString().padStart(2, "0");
  }

  /** A whole-dollar preset's label: "$1,000". */
  function formatWhole(cents) {
    return cents % 100n === 0n ? "$" + groupThousands((cents / 100n).toString()) : formatCents(cents);
  }

  var bonusRate = { num: 20n, den: 100n };

  function setBonusRate(text) {
    var match = /^(\d+)(?:\.(\d+))?$/.exec(String(text || "").trim());
    if (!match) return;
    var decimals = match[2] || "";
    bonusRate = {
      num: BigInt(match[1] + decimals),
      den: 10n ** BigInt(decimals.length),
    };
  }

  /** The bonus on a top-up, in nanos: BONUS_RATE x amount, rounded down. */
  function bonusNanos(cents) {
    return (cents * NANOS_PER_CENT * bonusRate.num) / bonusRate.den;
  }

  function ratePercent() {
    var tenths = (bonusRate.num * 1000n) / bonusRate.den;
    return (tenths % 10n === 0n ? (tenths / 10n).toString() : (Number(tenths) / 10).toString()) + "%";
  }

  // --- cards -------------------------------------------------------------------

  var BRANDS = {
    visa: ["Visa", "VISA"],
    mastercard: ["Mastercard", "MC"],
    amex: ["American Express", "AMEX"],
    discover: ["Discover", "DISC"],
    diners: ["Diners Club", "DC"],
    jcb: ["JCB", "JCB"],
    unionpay: ["UnionPay", "UP"],
  };

  function brandName(brand) {
    var known = BRANDS[(brand || "").toLowerCase()];
    if (known) return known[0];
    return brand ? brand.charAt(0).toUpperCase() + brand.slice(1) : "Card";
  }

  function brandMark(brand) {
    var key = (brand || "").toLowerCase();
    var known = BRANDS[key];
    return el("span", {
      className: "brand-mark brand-mark--" + (known ? key : "card"),
      "aria-hidden": "true",
      text: known ? known[1] : "CARD",
    });
  }

  function cardLabel(card) {
    return brandName(card.brand) + " •••• " + card.last4;
  }

  function cardExpiry(card) {
    if (!card.exp_month || !card.exp_year) return "";
    return String(card.exp_month).padStart(2, "0") + "/" + String(card.exp_year).slice(-2);
  }

  function cardExpired(card) {
    if (!card.exp_month || !card.exp_year) return false;
    var now = new Date();
    var year = now.getUTCFullYear();
    var month = now.getUTCMonth() + 1;
    return card.exp_year < year || (card.exp_year === year && card.exp_month < month);
  }

  // --- errors ------------------------------------------------------------------

  function PayError(message, code, status, fields) {
    this.message = message;
    this.code = code || "error";
    this.status = status || 0;
    this.fields = fields || null;
  }

  var MESSAGES = {
    payments_not_configured: "Payments are not configured on this server.",
    unknown_payment_method: "That card is no longer saved on your account. Choose another card.",
    billing_profile_required: "Add your billing details before your first top-up.",
    network: "Could not reach the server. Check your connection and try again.",
  };

  /** "amount: a top-up is between $5.00 and $25,000.00" -> "A top-up is ...". */
  function sentence(message) {
    var text = String(message || "").replace(/^[a-z_]+: /, "").trim();
    if (!text) return "";
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  function apiError(status, data) {
    if (data && data.error && data.error.code) {
      var code = data.error.code;
      var message = code === "billing_profile_required" ? "" : MESSAGES[code];
      // "threshold: must be below ..." belongs next to the threshold field.
      var named = /^([a-z_]+): /.exec(String(data.error.message || ""));
      var fields = named ? {} : undefined;
      if (named) fields[named[1]] = sentence(data.error.message);
      return new PayError(message || sentence(data.error.message) || MESSAGES[code], code, status, fields);
    }
    if (status === 401 || status === 403) {
      return new PayError("Your session has ended or the page is out of date. Reload the page, sign in again if asked, and retry.", "auth", status);
    }
    if (status === 503) return new PayError(MESSAGES.payments_not_configured, "payments_not_configured", status);
    if (data && typeof data === "object" && !Array.isArray(data)) {
      var fields = {};
      var first = "";
      Object.keys(data).forEach(function (field) {
        var value = data[field];
        var text = sentence(Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : "");
        if (!text) return;
        fields[field] = text;
        if (!first) first = text;
      });
      if (first) return new PayError(first, "invalid", status, fields);
    }
    return new PayError("Something went wrong (HTTP " + status + "). Please try again.", "http", status);
  }

  /** An error from Stripe.js, for people. */
  function stripeMessage(error, fallback) {
    if (!error) return fallback;
    if (typeof error === "string") return error;
    return error.message ? sentence(error.message) : fallback;
  }

  // --- the API -------------------------------------------------------------------

  var settingsNode = document.getElementById("payments-root");
  var apiBase = settingsNode ? settingsNode.getAttribute("data-api").replace(/balance\/?$/, "") : "/api/v1/";
  var csrfToken = settingsNode ? settingsNode.getAttribute("data-csrf") : "";

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path.charAt(0) === "/" ? path : apiBase + path, options).then(
      function (response) {
        var reading = response.status === 204 ? Promise.resolve(null) : response.json().catch(function () { return null; });
        return reading.then(function (data) {
          if (!response.ok) throw apiError(response.status, data);
          return data;
        });
      },
      function () {
        throw new PayError(MESSAGES.network, "network");
      }
    );
  }

  // --- the page after a top-up: balances ----------------------------------------

  function refreshBalances() {
    if (!$("[data-testid=balance-total]")) return Promise.resolve();
    return api("GET", "balance").then(function (balance) {
      var pairs = [
        ["balance-total", balance.total_credits],
        ["balance-topup", balance.top_up_credits],
        ["balance-bonus", balance.bonus_credits],
      ];
      pairs.forEach(function (pair) {
        var node = $("[data-testid=" + pair[0] + "]");
        if (node) {
          node.textContent = formatUsd(pair[1]);
          node.classList.remove("is-updated");
          void node.offsetWidth; // restart the highlight
          node.classList.add("is-updated");
        }
      });
    }).catch(function () { /* the page reload after "Done" shows them */ });
  }

  // The rest needs the dialogs (and #payments-root); the Alipay return page
  // needs only the code at the end.
  if (!settingsNode) {
    initReturnPage();
    return;
  }

  var returnUrlTemplate = settingsNode.getAttribute("data-return-url");

  // --- configuration and Stripe.js -------------------------------------------------

  var configPromise = null;

  function getConfig() {
    if (!configPromise) {
      if (settingsNode.hasAttribute("data-configured")) {
        configPromise = Promise.resolve({
          configured: settingsNode.getAttribute("data-configured") === "true",
          publishable_key: settingsNode.getAttribute("data-stripe-key"),
          js_url: settingsNode.getAttribute("data-stripe-js"),
          bonus_rate: settingsNode.getAttribute("data-bonus-rate"),
        });
      } else {
        configPromise = api("GET", settingsNode.getAttribute("data-config-url"));
      }
      configPromise = configPromise.then(function (config) {
        setBonusRate(config.bonus_rate);
        return config;
      });
      configPromise.catch(function () { configPromise = null; });
    }
    return configPromise;
  }

  var stripePromise = null;

  function getStripe() {
    if (!stripePromise) {
      stripePromise = getConfig().then(function (config) {
        if (!config.configured) throw new PayError(MESSAGES.payments_not_configured, "payments_not_configured");
        return new Promise(function (resolve, reject) {
          function ready() {
            if (typeof window.Stripe !== "function") {
              reject(new PayError("Stripe.js did not load. Reload the page and try again.", "stripe_js"));
              return;
            }
            resolve(window.Stripe(config.publishable_key));
          }
          if (typeof window.Stripe === "function") { ready(); return; }
          var script = document.createElement("script");
          script.src = config.js_url;
          script.async = true;
          script.onload = ready;
          script.onerror = function () {
            reject(new PayError("Stripe.js could not be loaded. Check your connection and try again.", "stripe_js"));
          };
          document.head.appendChild(script);
        });
      });
      stripePromise.catch(function () { stripePromise = null; });
    }
    return stripePromise;
  }

  // --- dialogs -----------------------------------------------------------------------

  var stripeWait = $("[data-role=stripe-wait]");

  function openDialog(dialog) {
    if (!dialog.open) dialog.showModal();
  }

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  // Buttons marked data-close close their dialog, unless it is busy.
  $$("dialog.modal").forEach(function (dialog) {
    dialog.addEventListener("click", function (event) {
      var closer = event.target.closest("[data-close]");
      if (closer && !dialog.classList.contains("is-busy")) closeDialog(dialog);
    });
    dialog.addEventListener("cancel", function (event) {
      if (dialog.classList.contains("is-busy")) event.preventDefault();
    });
  });

  function setBusy(dialog, busy, button, label) {
    dialog.classList.toggle("is-busy", busy);
    $$("button, input, select", dialog).forEach(function (control) {
      if (busy) {
        if (!control.disabled) {
          control.disabled = true;
          control.setAttribute("data-busy-disabled", "");
        }
      } else if (control.hasAttribute("data-busy-disabled")) {
        control.disabled = false;
        control.removeAttribute("data-busy-disabled");
      }
    });
    if (button) {
      if (busy) {
        button.setAttribute("data-label", button.textContent);
        button.textContent = "";
        button.appendChild(el("span", { className: "spinner", "aria-hidden": "true" }));
        button.appendChild(document.createTextNode(" " + (label || "Working…")));
      } else if (button.hasAttribute("data-label")) {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("data-label");
      }
    }
  }

  function showError(dialog, message) {
    var box = $("[data-role=error]", dialog);
    if (!box) return;
    box.textContent = message || "";
    show(box, Boolean(message));
  }

  function clearFieldErrors(dialog) {
    $$("[data-error-for]", dialog).forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
      var field = node.closest(".field");
      if (field) field.classList.remove("field--invalid");
    });
  }

  /** Field errors from the API next to their fields; true if any was shown. */
  function showFieldErrors(dialog, fields) {
    var shown = false;
    Object.keys(fields || {}).forEach(function (name) {
      var node = $("[data-error-for=" + name + "]", dialog);
      if (!node) return;
      node.textContent = fields[name];
      node.hidden = false;
      var field = node.closest(".field");
      if (field) field.classList.add("field--invalid");
      shown = true;
    });
    return shown;
  }

  /**
   * Run a Stripe.js call that may show the bank's 3-D Secure window. That window
   * is added to the page, behind (and made inert by) an open modal dialog, so
   * our dialogs step aside while it is up and come back afterwards.
   */
  function withStripeWindow(call, expectWindow) {
    var open = $$("dialog.modal[open]");
    var suspended = false;
    function suspend() {
      if (suspended) return;
      suspended = true;
      open.forEach(function (dialog) {
        dialog.setAttribute("data-suspended", "");
        dialog.close();
      });
      show(stripeWait, true);
    }
    var observer = null;
    if (expectWindow) {
      suspend();
    } else if (window.MutationObserver) {
      observer = new MutationObserver(function (records) {
        var added = records.some(function (record) {
          return Array.prototype.some.call(record.addedNodes, function (node) {
            return node.nodeType === 1 && node.tagName !== "SCRIPT" && node.tagName !== "LINK" && node.tagName !== "STYLE";
          });
        });
        if (added) suspend();
      });
      observer.observe(document.body, { childList: true });
    }
    function restore() {
      if (observer) observer.disconnect();
      if (!suspended) return;
      show(stripeWait, false);
      open.forEach(function (dialog) {
        dialog.removeAttribute("data-suspended");
        if (!dialog.open) dialog.showModal();
      });
    }
    var result;
    try {
      result = Promise.resolve(call());
    } catch (error) {
      result = Promise.reject(error);
    }
    return result.then(
      function (value) { restore(); return value; },
      function (error) { restore(); throw error; }
    );
  }

  // --- the card Element (one per page, moved between dialogs) --------------------------

  var card = { element: null, mountedIn: null, touched: false, complete: null, error: "" };

  function cardElementIn(container) {
    return getStripe().then(function (stripe) {
      if (!card.element) {
        card.element = stripe.elements().create("card", {
          hidePostalCode: false,
          style: {
            base: {
              color: "#101828",
              fontSize: "15px",
              fontFamily: '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
              "::placeholder": { color: "#98a2b3" },
            },
            invalid: { color: "#b42318" },
          },
        });
        card.element.on("change", function (event) {
          card.touched = true;
          // Stripe.js says whether the card is complete and what is wrong;
          // localstripe's stand-in says nothing (Stripe checks on saving).
          card.complete = event && typeof event.complete === "boolean" ? event.complete : null;
          card.error = event && event.error ? event.error.message : "";
          var note = card.mountedIn && card.mountedIn.parentNode.querySelector("[data-role=card-error]");
          if (note) {
            note.textContent = card.error;
            note.hidden = !card.error;
          }
        });
      }
      if (card.mountedIn !== container) {
        if (card.mountedIn) card.element.unmount();
        card.element.mount(container);
        card.mountedIn = container;
        card.touched = false;
        card.complete = null;
        card.error = "";
      }
      return stripe;
    });
  }

  /** Save the card typed into the Element: a SetupIntent, confirmed by Stripe.js.
   *  Resolves with the new card's id. */
  function cardSave(container) {
    var stripe;
    return cardElementIn(container).then(function (loaded) {
      stripe = loaded;
      if (!card.touched) throw new PayError("Enter your card details.", "card_incomplete");
      if (card.error) throw new PayError(card.error, "card_invalid");
      if (card.complete === false) throw new PayError("Your card details are incomplete.", "card_incomplete");
      return api("POST", "payment-methods");
    }).then(function (intent) {
      return withStripeWindow(function () {
        return stripe.confirmCardSetup(intent.client_secret, {
          payment_method: { card: card.element },
        });
      }, false);
    }).then(function (result) {
      if (!result || result.error) {
        throw new PayError(stripeMessage(result && result.error, "Your card could not be saved."), "card_setup");
      }
      var pm = result.setupIntent && result.setupIntent.payment_method;
      var id = pm && typeof pm === "object" ? pm.id : pm;
      cardsChanged();
      return id;
    });
  }

  // --- saved cards, auto top-up and the profile, shared by every part --------------------

  var cardsPromise = null;

  function getCards(fresh) {
    if (!cardsPromise || fresh) {
      cardsPromise = api("GET", "payment-methods");
      cardsPromise.catch(function () { cardsPromise = null; });
    }
    return cardsPromise;
  }

  function cardsChanged() {
    cardsPromise = null;
    var listing = getCards(true);
    listing.then(renderCardsEverywhere, renderCardsEverywhere.bind(null, null));
    return listing;
  }

  var autoState = null;

  // --- the Top Up dialog ------------------------------------------------------------------

  var topupDialog = $("#topup-dialog");
  var topup = {
    method: null, // a card id, "new" or "alipay"
    succeeded: false,
  };

  function topupStep(step) {
    $$("[data-step]", topupDialog).forEach(function (node) {
      node.hidden = node.getAttribute("data-step") !== step;
    });
  }

  function topupCents() {
    var chosen = $("input[name=topup-amount]:checked", topupDialog);
    if (!chosen) return null;
    if (chosen.value === "custom") return parseCents($("#topup-custom").value);
    return parseCents(chosen.value);
  }

  function topupRender() {
    var chosen = $("input[name=topup-amount]:checked", topupDialog);
    var custom = chosen && chosen.value === "custom";
    show($("[data-role=custom]", topupDialog), custom);
    $$(".amount-option", topupDialog).forEach(function (option) {
      option.classList.toggle("is-selected", $("input", option).checked);
    });
    $$("[data-bonus-for]", topupDialog).forEach(function (node) {
      var cents = parseCents(node.getAttribute("data-bonus-for"));
      node.textContent = "+" + formatWhole((bonusNanos(cents) + NANOS_PER_CENT / 2n) / NANOS_PER_CENT) + " bonus";
    });
    var cents = topupCents();
    var receive = $("[data-role=receive]", topupDialog);
    var pay = $("[data-action=pay]", topupDialog);
    receive.textContent = "";
    var valid = cents !== null && cents >= MIN_CENTS && cents <= MAX_CENTS;
    if (valid) {
      var bonus = bonusNanos(cents);
      var total = cents * NANOS_PER_CENT + bonus;
      receive.classList.remove("receive--empty");
      receive.appendChild(el("p", { className: "receive-line" }, [
        "You receive ",
        el("strong", { text: formatNanos(total), "data-testid": "topup-receive-total" }),
        ": " + formatCents(cents) + " + " + formatNanos(bonus) + " bonus",
      ]));
      receive.appendChild(el("span", { className: "receive-tag", text: "+" + ratePercent() + " bonus" }));
    } else {
      receive.classList.add("receive--empty");
      receive.appendChild(el("p", {
        className: "receive-line",
        text: custom && $("#topup-custom").value.trim()
          ? "Enter an amount from $5.00 to $25,000.00, in dollars and cents."
          : "Enter an amount to see what you receive.",
      }));
    }
    var label;
    if (topup.method === "alipay") label = "Continue to Alipay";
    else if (topup.method === "new") label = valid ? "Save card & pay " + formatCents(cents) : "Save card & pay";
    else label = valid ? "Pay " + formatCents(cents) : "Pay";
    if (!pay.hasAttribute("data-label")) pay.textContent = label;
  }

  function methodOption(value, mark, title, meta, badge, checked) {
    var input = el("input", { type: "radio", name: "topup-method", value: value, checked: checked });
    var label = el("label", { className: "method" + (checked ? " is-selected" : ""), "data-testid": "method-" + (value.indexOf("pm_") === 0 || value.indexOf("card_") === 0 ? "card" : value) }, [
      input,
      mark,
      el("span", { className: "method-text" }, [
        el("span", { className: "method-title", text: title }),
        meta ? el("span", { className: "method-meta", text: meta }) : null,
      ]),
      badge,
    ]);
    return label;
  }

  function topupRenderMethods(cards, alipayAvailable, preferred) {
    var list = $("[data-role=methods]", topupDialog);
    list.textContent = "";
    var ids = cards.map(function (c) { return c.id; });
    var choice = preferred;
    if (!choice || (choice !== "new" && choice !== "alipay" && ids.indexOf(choice) < 0)) {
      var usable = cards.filter(function (c) { return !cardExpired(c); });
      var fallback = usable.filter(function (c) { return c.default; })[0] || usable[0];
      choice = fallback ? fallback.id : "new";
    }
    cards.forEach(function (c) {
      var expired = cardExpired(c);
      list.appendChild(methodOption(
        c.id,
        brandMark(c.brand),
        cardLabel(c),
        (expired ? "Expired " : "Expires ") + cardExpiry(c),
        c.default ? el("span", { className: "badge badge--accent", text: "Default" }) : null,
        c.id === choice
      ));
    });
    list.appendChild(methodOption(
      "new",
      el("span", { className: "brand-mark brand-mark--new", "aria-hidden": "true", text: "+" }),
      cards.length ? "Add a new card" : "Credit or debit card",
      cards.length ? null : "Saved for your next top-ups",
      null,
      choice === "new"
    ));
    var alipay = methodOption(
      "alipay",
      el("span", { className: "brand-mark brand-mark--alipay", "aria-hidden": "true", text: "Alipay" }),
      "Alipay",
      alipayAvailable ? "You’ll be taken to Alipay to pay" : "Not available here",
      null,
      choice === "alipay"
    );
    if (!alipayAvailable) {
      $("input", alipay).disabled = true;
      alipay.classList.add("is-disabled");
    }
    list.appendChild(alipay);
    topupSelectMethod(choice);
  }

  function topupSelectMethod(value) {
    topup.method = value;
    $$(".method", topupDialog).forEach(function (option) {
      var input = $("input", option);
      input.checked = input.value === value;
      option.classList.toggle("is-selected", input.checked);
    });
    var newCard = $("[data-role=new-card]", topupDialog);
    show(newCard, value === "new");
    if (value === "new") {
      cardElementIn($("#topup-card-element")).catch(function (error) {
        showError(topupDialog, error.message);
      });
    }
    topupRender();
  }

  function topupLoadMethods(preferred) {
    var list = $("[data-role=methods]", topupDialog);
    return Promise.all([getCards(), getStripe().catch(function () { return null; })]).then(function (loaded) {
      var cards = loaded[0] || [];
      var stripe = loaded[1];
      topupRenderMethods(cards, Boolean(stripe && typeof stripe.confirmAlipayPayment === "function"), preferred);
    }).catch(function (error) {
      list.textContent = "";
      list.appendChild(el("p", { className: "muted small", text: "Your saved cards could not be loaded." }));
      showError(topupDialog, error.message);
    });
  }

  function topupOpen() {
    topup.succeeded = false;
    showError(topupDialog, "");
    topupStep("form");
    setBusy(topupDialog, false, $("[data-action=pay]", topupDialog));
    openDialog(topupDialog);
    getConfig().then(function (config) {
      topupRender();
      if (!config.configured) {
        showError(topupDialog, MESSAGES.payments_not_configured);
        return;
      }
      topupLoadMethods(topup.method);
      // Billing details come first: asked for before the first top-up.
      api("GET", "billing-profile").catch(function (error) {
        if (error.status === 404) profileOpen({ firstTopUp: true, none: true });
      });
    }, function (error) {
      showError(topupDialog, error.message);
    });
  }

  topupDialog.addEventListener("change", function (event) {
    if (event.target.name === "topup-amount") {
      topupRender();
      if (event.target.value === "custom") $("#topup-custom").focus();
    } else if (event.target.name === "topup-method") {
      showError(topupDialog, "");
      topupSelectMethod(event.target.value);
    }
  });
  $("#topup-custom").addEventListener("input", topupRender);

  topupDialog.addEventListener("close", function () {
    if (topupDialog.hasAttribute("data-suspended")) return;
    if (topup.succeeded && $("[data-testid=transaction-history]")) {
      // The new rows of the history (and their invoices).
      window.location.reload();
    }
  });

  $("[data-action=pay]", topupDialog).addEventListener("click", function () {
    showError(topupDialog, "");
    var cents = topupCents();
    if (cents === null || cents < MIN_CENTS || cents > MAX_CENTS) {
      showError(topupDialog, "Choose an amount from $5.00 to $25,000.00, in dollars and cents.");
      if ($("input[name=topup-amount]:checked", topupDialog).value === "custom") $("#topup-custom").focus();
      return;
    }
    var button = $("[data-action=pay]", topupDialog);
    setBusy(topupDialog, true, button, topup.method === "new" ? "Saving card…" : "Processing…");
    var paying;
    if (topup.method === "alipay") {
      paying = topupAlipay(cents);
    } else if (topup.method === "new") {
      paying = cardSave($("#topup-card-element")).then(function (cardId) {
        topup.method = cardId;
        return topupLoadMethods(cardId).then(function () {
          setBusy(topupDialog, false, button);
          setBusy(topupDialog, true, button, "Processing…");
          return topupWithCard(cents, cardId || topup.method);
        });
      });
    } else {
      paying = topupWithCard(cents, topup.method);
    }
    paying.catch(function (error) {
      topupStep("form");
      if (error.code === "billing_profile_required") {
        profileOpen({ firstTopUp: true });
      } else if (error.code === "unknown_payment_method") {
        cardsChanged();
        topupLoadMethods(null);
      }
      showError(topupDialog, error.message || "The payment did not go through. Please try again.");
    }).then(function () {
      setBusy(topupDialog, false, button);
      topupRender();
    });
  });

  function topupWithCard(cents, cardId) {
    if (!cardId || cardId === "new" || cardId === "alipay") {
      return Promise.reject(new PayError("Choose a card to pay with.", "no_card"));
    }
    return api("POST", "top-ups", { amount: amountString(cents), payment_method: cardId }).then(topupFollow);
  }

  /** Act on a started (or re-read) top-up until it succeeds or fails. */
  function topupFollow(started) {
    if (started.status === "succeeded") return topupDone(started);
    if (started.status === "mismatch") throw reviewError(started);
    if (started.status === "failed" || started.status === "canceled") {
      throw new PayError(declineMessage(started), "declined");
    }
    if (started.status === "requires_action" && started.client_secret) {
      return getStripe().then(function (stripe) {
        return withStripeWindow(function () {
          return stripe.confirmCardPayment(started.client_secret);
        }, true);
      }).then(function (result) {
        var intent = result && result.paymentIntent;
        if (!result || result.error || (intent && (intent.status === "requires_payment_method" || intent.status === "canceled"))) {
          var why = result && result.error ? stripeMessage(result.error, "") : "";
          throw new PayError(
            "3-D Secure authentication failed" + (why ? ": " + why : ".") + " Your card was not charged. Try again or use another card.",
            "authentication_failed"
          );
        }
        return topupPoll(started.id);
      });
    }
    return topupPoll(started.id);
  }

  /** Stripe took another amount than asked: nothing credited, operators told. */
  function reviewError(topupRow) {
    var why = sentence(topupRow.failure_message) || "This payment needs a check by our team.";
    return new PayError(why + " Please do not pay again; we will get back to you.", "mismatch");
  }

  function declineMessage(topupRow) {
    var why = sentence(topupRow.failure_message) || "Your card was declined.";
    return "The payment did not go through: " + why + " Try another card.";
  }

  function topupPoll(id) {
    topupStep("working");
    var attempts = 0;
    function check() {
      attempts += 1;
      return api("GET", "top-ups/" + id).then(function (row) {
        if (row.status === "succeeded") return topupDone(row);
        if (row.status === "mismatch") throw reviewError(row);
        if (row.status === "failed" || row.status === "canceled") throw new PayError(declineMessage(row), "declined");
        if (attempts >= 30) {
          throw new PayError("Your payment is still being processed. Your credits will appear as soon as Stripe confirms it; you can close this window.", "pending");
        }
        return sleep(attempts < 5 ? 700 : 1500).then(check);
      });
    }
    return check();
  }

  function topupDone(row) {
    topup.succeeded = true;
    var amount = parseNanos(row.amount);
    var bonus = parseNanos(row.bonus);
    $("[data-role=done-title]", topupDialog).textContent = "Payment received";
    var note = $("[data-role=done-note]", topupDialog);
    note.textContent = "";
    note.appendChild(el("strong", { text: formatNanos(amount + bonus) }));
    note.appendChild(document.createTextNode(" added to your balance: " + formatNanos(amount) + " + " + formatNanos(bonus) + " bonus."));
    topupStep("done");
    $("[data-testid=topup-done]", topupDialog).focus();
    cardsChanged();
    return refreshBalances();
  }

  function topupAlipay(cents) {
    var stripe;
    return getStripe().then(function (loaded) {
      stripe = loaded;
      if (typeof stripe.confirmAlipayPayment !== "function") {
        throw new PayError("Alipay is not available here. Pay with a card instead.", "alipay_unavailable");
      }
      return api("POST", "top-ups", { amount: amountString(cents), method: "alipay" });
    }).then(function (started) {
      var returnUrl = new URL(returnUrlTemplate.replace(/\/0\/return$/, "/" + started.id + "/return"), window.location.href).href;
      // Stripe.js leaves for Alipay; the return page asks the server how it went.
      return stripe.confirmAlipayPayment(started.client_secret, { return_url: returnUrl }).then(function (result) {
        if (result && result.error) throw new PayError(stripeMessage(result.error, "Alipay could not be started."), "alipay");
      });
    });
  }

  // --- the Add card dialog ---------------------------------------------------------------

  var cardDialog = $("#card-dialog");
  var cardDialogDone = null;

  function cardDialogOpen(onSaved) {
    cardDialogDone = onSaved || null;
    showError(cardDialog, "");
    setBusy(cardDialog, false, $("[data-action=save]", cardDialog));
    openDialog(cardDialog);
    cardElementIn($("#card-dialog-element")).catch(function (error) {
      showError(cardDialog, error.message);
    });
  }

  cardDialog.addEventListener("close", function () {
    if (cardDialog.hasAttribute("data-suspended")) return;
    // Give the Element back to the Top Up dialog if it was there.
    if (card.mountedIn === $("#card-dialog-element") && card.element) {
      card.element.unmount();
      card.mountedIn = null;
    }
  });

  $("[data-action=save]", cardDialog).addEventListener("click", function () {
    var button = $("[data-action=save]", cardDialog);
    showError(cardDialog, "");
    setBusy(cardDialog, true, button, "Saving…");
    cardSave($("#card-dialog-element")).then(function (cardId) {
      setBusy(cardDialog, false, button);
      closeDialog(cardDialog);
      if (cardDialogDone) cardDialogDone(cardId);
    }, function (error) {
      setBusy(cardDialog, false, button);
      showError(cardDialog, error.message);
    });
  });

  // --- the confirm dialog --------------------------------------------------------------------

  var confirmDialog = $("#confirm-dialog");
  var confirmAction = null;

  function confirmOpen(options) {
    $("[data-role=title]", confirmDialog).textContent = options.title;
    $("[data-role=message]", confirmDialog).textContent = options.message;
    $("[data-role=confirm]", confirmDialog).textContent = options.confirm;
    showError(confirmDialog, "");
    confirmAction = options.action;
    openDialog(confirmDialog);
  }

  $("[data-action=confirm]", confirmDialog).addEventListener("click", function () {
    var button = $("[data-action=confirm]", confirmDialog);
    if (!confirmAction) return;
    setBusy(confirmDialog, true, button, "Working…");
    Promise.resolve(confirmAction()).then(function () {
      setBusy(confirmDialog, false, button);
      closeDialog(confirmDialog);
    }, function (error) {
      setBusy(confirmDialog, false, button);
      showError(confirmDialog, error.message);
    });
  });

  // --- the billing details dialog ---------------------------------------------------------------

  var profileDialog = $("#profile-dialog");
  var profileForm = $("[data-role=form]", profileDialog);
  var PROFILE_FIELDS = ["name", "country", "address_line1", "address_line2", "city", "state", "postal_code", "tax_id"];
  var regionNames = null;
  try {
    regionNames = new Intl.DisplayNames(["en"], { type: "region" });
  } catch (error) {
    regionNames = null;
  }

  function countryName(code) {
    if (!regionNames || !/^[A-Z]{2}$/.test(code)) return "";
    try {
      var name = regionNames.of(code);
      return name && name !== code ? name : "";
    } catch (error) {
      return "";
    }
  }

  function profileCountryHint() {
    var input = profileForm.elements.country;
    var code = input.value.trim().toUpperCase();
    var name = countryName(code);
    $("[data-role=country-name]", profileDialog).textContent = name || "Two-letter code, e.g. US, DE, SG";
  }

  profileForm.elements.country.addEventListener("input", function () {
    var input = profileForm.elements.country;
    var upper = input.value.toUpperCase().replace(/[^A-Z]/g, "");
    if (upper !== input.value) input.value = upper;
    profileCountryHint();
  });

  function profileFill(profile) {
    PROFILE_FIELDS.forEach(function (name) {
      profileForm.elements[name].value = (profile && profile[name]) || "";
    });
    profileCountryHint();
  }

  function profileOpen(options) {
    options = options || {};
    clearFieldErrors(profileDialog);
    showError(profileDialog, "");
    $("[data-role=lead]", profileDialog).textContent = options.firstTopUp
      ? "Before your first top-up, tell us who to bill. These details are printed on your invoices."
      : "Printed on your invoices. Changes apply to invoices issued from now on.";
    setBusy(profileDialog, false, $("[type=submit]", profileDialog));
    profileFill(null);
    openDialog(profileDialog);
    var loading = options.none ? Promise.resolve() : api("GET", "billing-profile").then(profileFill, function () { /* none yet */ });
    loading.then(function () {
      var first = PROFILE_FIELDS.map(function (n) { return profileForm.elements[n]; }).filter(function (input) {
        return input.required && !input.value;
      })[0];
      (first || profileForm.elements.name).focus();
    });
  }

  profileForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearFieldErrors(profileDialog);
    showError(profileDialog, "");
    var body = {};
    PROFILE_FIELDS.forEach(function (name) {
      body[name] = profileForm.elements[name].value.trim();
    });
    var missing = {};
    PROFILE_FIELDS.forEach(function (name) {
      if (profileForm.elements[name].required && !body[name]) missing[name] = "Required.";
    });
    if (body.country && !/^[A-Za-z]{2}$/.test(body.country)) missing.country = "A two-letter country code, e.g. US.";
    if (Object.keys(missing).length) {
      showFieldErrors(profileDialog, missing);
      var firstMissing = PROFILE_FIELDS.filter(function (n) { return missing[n]; })[0];
      profileForm.elements[firstMissing].focus();
      return;
    }
    var button = $("[type=submit]", profileDialog);
    setBusy(profileDialog, true, button, "Saving…");
    api("PUT", "billing-profile", body).then(function (profile) {
      setBusy(profileDialog, false, button);
      closeDialog(profileDialog);
      renderProfileSummary(profile);
    }, function (error) {
      setBusy(profileDialog, false, button);
      if (!showFieldErrors(profileDialog, error.fields)) showError(profileDialog, error.message);
    });
  });

  // --- the Auto Top-Up dialog -----------------------------------------------------------------

  var autoDialog = $("#autotopup-dialog");

  function autoRenderReceive() {
    var cents = parseCents($("#autotopup-amount").value);
    var node = $("[data-role=receive]", autoDialog);
    if (cents !== null && cents >= MIN_CENTS && cents <= MAX_CENTS) {
      var bonus = bonusNanos(cents);
      node.textContent = "You receive " + formatNanos(cents * NANOS_PER_CENT + bonus) + " each time: " + formatCents(cents) + " + " + formatNanos(bonus) + " bonus";
    } else {
      node.textContent = "From $5.00 to $25,000.00";
    }
  }

  function autoRenderCards(cards, selected) {
    var select = $("#autotopup-card");
    select.textContent = "";
    var usable = cards.filter(function (c) { return !cardExpired(c) || c.id === selected; });
    usable.forEach(function (c) {
      var text = cardLabel(c) + " · expires " + cardExpiry(c) + (c.default ? " · default" : "");
      select.appendChild(el("option", { value: c.id, text: text }));
    });
    var chosen = usable.filter(function (c) { return c.id === selected; })[0] ||
      usable.filter(function (c) { return c.default; })[0] || usable[0];
    if (chosen) select.value = chosen.id;
    select.disabled = !usable.length;
    show($("[data-role=no-cards]", autoDialog), !usable.length);
  }

  function autoOpen() {
    clearFieldErrors(autoDialog);
    showError(autoDialog, "");
    setBusy(autoDialog, false, $("[data-action=save]", autoDialog));
    $("#autotopup-consent").checked = false;
    openDialog(autoDialog);
    Promise.all([api("GET", "auto-top-up"), getCards().catch(function (error) {
      showError(autoDialog, error.message);
      return [];
    })]).then(function (loaded) {
      var state = loaded[0];
      autoState = state;
      $("#autotopup-enabled").checked = Boolean(state.enabled);
      var threshold = parseCents(formatUsd(state.threshold));
      var amount = parseCents(formatUsd(state.amount));
      $("#autotopup-threshold").value = amountString(threshold === null ? 1000n : threshold);
      $("#autotopup-amount").value = amountString(amount === null ? 10000n : amount);
      var paused = Boolean(state.paused_at);
      show($("[data-role=paused]", autoDialog), paused);
      $("[data-role=paused-reason]", autoDialog).textContent = sentence(state.paused_reason) || "a payment failed.";
      autoRenderCards(loaded[1] || [], state.payment_method);
      autoRenderReceive();
    }, function (error) {
      showError(autoDialog, error.message);
    });
  }

  $("#autotopup-amount").addEventListener("input", autoRenderReceive);
  $("#autotopup-consent").addEventListener("change", function () {
    if ($("#autotopup-consent").checked) showError(autoDialog, "");
  });

  autoDialog.addEventListener("click", function (event) {
    if (event.target.closest("[data-action=add-card]")) {
      cardDialogOpen(function (cardId) {
        getCards().then(function (cards) { autoRenderCards(cards, cardId); });
      });
    }
  });

  $("[data-action=save]", autoDialog).addEventListener("click", function () {
    clearFieldErrors(autoDialog);
    showError(autoDialog, "");
    var enabled = $("#autotopup-enabled").checked;
    var threshold = parseCents($("#autotopup-threshold").value);
    var amount = parseCents($("#autotopup-amount").value);
    var cardId = $("#autotopup-card").value;
    var problems = {};
    if (threshold === null) problems.threshold = "Enter an amount in dollars and cents, e.g. 10.00.";
    if (amount === null || amount < MIN_CENTS || amount > MAX_CENTS) problems.amount = "Enter an amount from $5.00 to $25,000.00.";
    // One top-up must lift the balance above the threshold, or it would charge again and again.
    if (enabled && !problems.threshold && !problems.amount && threshold >= amount) problems.threshold = "Choose a threshold below the top-up amount.";
    if (enabled && !cardId) problems.payment_method = "Add a card to use Auto Top-Up.";
    if (showFieldErrors(autoDialog, problems)) return;
    if (enabled && !$("#autotopup-consent").checked) {
      showError(autoDialog, "To turn on Auto Top-Up, tick the box to authorize the automatic charges.");
      $("#autotopup-consent").focus();
      return;
    }
    var button = $("[data-action=save]", autoDialog);
    setBusy(autoDialog, true, button, "Saving…");
    api("PUT", "auto-top-up", {
      enabled: enabled,
      threshold: amountString(threshold),
      amount: amountString(amount),
      payment_method: cardId || "",
    }).then(function (state) {
      setBusy(autoDialog, false, button);
      autoState = state;
      closeDialog(autoDialog);
      renderAutoEverywhere();
    }, function (error) {
      setBusy(autoDialog, false, button);
      if (error.code === "billing_profile_required") {
        profileOpen({ firstTopUp: false });
        showError(autoDialog, "Add your billing details first, then save again.");
      } else if (!showFieldErrors(autoDialog, error.fields)) {
        showError(autoDialog, error.message);
      }
    });
  });

  // --- what pages show: saved cards, Auto Top-Up, billing details --------------------------------

  function renderCardsEverywhere(cards) {
    renderSavedCards(cards);
    renderCardStrip(cards);
    renderAutoEverywhere();
  }

  function renderSavedCards(cards) {
    var box = $("[data-role=saved-cards]");
    if (!box) return;
    box.textContent = "";
    if (!cards) {
      box.appendChild(el("p", { className: "saved-cards-empty", text: "Your saved cards could not be loaded. Reload the page to try again." }));
      return;
    }
    if (!cards.length) {
      box.appendChild(el("p", { className: "saved-cards-empty", text: "No saved cards yet. Add one to top up in one click and to use Auto Top-Up." }));
      return;
    }
    var list = el("ul", { className: "saved-card-list" });
    cards.forEach(function (c) {
      var expired = cardExpired(c);
      var actions = el("div", { className: "saved-card-actions" });
      if (!c.default) {
        var makeDefault = el("button", { className: "btn btn--secondary btn--small", type: "button", text: "Make default" });
        makeDefault.addEventListener("click", function () {
          makeDefault.disabled = true;
          api("PATCH", "payment-methods/" + encodeURIComponent(c.id), { default: true }).then(cardsChanged, function (error) {
            makeDefault.disabled = false;
            window.alert(error.message);
          });
        });
        actions.appendChild(makeDefault);
      }
      var remove = el("button", { className: "btn btn--ghost-danger btn--small", type: "button", text: "Remove", "aria-label": "Remove " + cardLabel(c) });
      remove.addEventListener("click", function () {
        var usedByAuto = autoState && autoState.enabled && autoState.payment_method === c.id;
        confirmOpen({
          title: "Remove " + cardLabel(c) + "?",
          message: usedByAuto
            ? "Auto Top-Up charges this card. Once it is removed, Auto Top-Up cannot run until you choose another card."
            : "It will no longer be offered for top-ups. You can add it again at any time.",
          confirm: "Remove card",
          action: function () {
            return api("DELETE", "payment-methods/" + encodeURIComponent(c.id)).then(cardsChanged);
          },
        });
      });
      actions.appendChild(remove);
      list.appendChild(el("li", { className: "saved-card", "data-testid": "saved-card" }, [
        brandMark(c.brand),
        el("div", { className: "saved-card-text" }, [
          el("span", { className: "saved-card-name" }, [
            cardLabel(c),
            c.default ? el("span", { className: "badge badge--accent", text: "Default" }) : null,
          ]),
          el("span", { className: "saved-card-meta" + (expired ? " is-expired" : ""), text: (expired ? "Expired " : "Expires ") + cardExpiry(c) }),
        ]),
        actions,
      ]));
    });
    box.appendChild(list);
  }

  function renderCardStrip(cards) {
    var node = $("[data-role=card-strip]");
    if (!node) return;
    node.textContent = "";
    if (!cards) {
      node.textContent = "Could not be loaded";
      return;
    }
    var chosen = cards.filter(function (c) { return c.default; })[0] || cards[0];
    if (!chosen) {
      node.textContent = "No saved card";
      return;
    }
    node.appendChild(brandMark(chosen.brand));
    node.appendChild(document.createTextNode(" " + cardLabel(chosen) + " · expires " + cardExpiry(chosen)));
    if (cards.length > 1) {
      node.appendChild(el("span", { className: "muted", text: " (+" + (cards.length - 1) + " more)" }));
    }
  }

  function autoDescription() {
    var state = autoState;
    if (!state) return null;
    if (state.enabled && state.paused_at) {
      return { badge: ["badge--warning", "Paused"], text: sentence(state.paused_reason) + (state.paused_by_operator_only ? "" : " Save the settings again to resume.") };
    }
    if (state.enabled) {
      return { badge: ["badge--ok", "On"], text: "Tops up " + formatUsd(state.amount) + " when your balance falls below " + formatUsd(state.threshold) + "." };
    }
    return { badge: ["badge--off", "Off"], text: "Turn it on to top up automatically when your balance runs low." };
  }

  function renderAutoEverywhere() {
    var info = autoDescription();
    if (!info) return;
    var strip = $("[data-role=auto-strip]");
    if (strip) {
      strip.textContent = "";
      strip.appendChild(el("span", { className: "badge " + info.badge[0], text: info.badge[1] }));
      strip.appendChild(document.createTextNode(" " + (info.badge[1] === "Off" ? "Not set up" : info.text)));
    }
    var summary = $("[data-role=auto-summary]");
    if (summary) {
      summary.textContent = "";
      summary.appendChild(el("p", {}, [el("span", { className: "badge " + info.badge[0], text: info.badge[1] })]));
      summary.appendChild(el("p", { className: "summary-note", text: info.text }));
    }
  }

  function renderProfileSummary(profile) {
    var box = $("[data-role=profile-summary]");
    var edit = $("[data-action=edit-profile]");
    if (edit) edit.textContent = "Edit";
    if (!box) return;
    box.textContent = "";
    var lines = [profile.address_line1, profile.address_line2,
      [profile.city, profile.state].filter(Boolean).join(", ") + (profile.postal_code ? " " + profile.postal_code : ""),
      profile.country];
    var address = el("address", { className: "profile-address" }, [el("strong", { text: profile.name })]);
    lines.filter(Boolean).forEach(function (line) {
      address.appendChild(el("br"));
      address.appendChild(document.createTextNode(line));
    });
    box.appendChild(address);
    if (profile.tax_id) box.appendChild(el("p", { className: "summary-note", text: "Tax ID: " + profile.tax_id }));
  }

  // --- the buttons ----------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || button.disabled || button.closest("dialog")) return;
    var action = button.getAttribute("data-action");
    if (action === "top-up") topupOpen();
    else if (action === "auto-top-up") autoOpen();
    else if (action === "edit-profile") profileOpen({});
    else if (action === "add-card") cardDialogOpen(null);
  });

  function paymentsOff() {
    $$("[data-action=top-up], [data-action=auto-top-up], [data-action=add-card]").forEach(function (button) {
      if (button.closest("dialog")) return;
      button.disabled = true;
      button.setAttribute("aria-describedby", "payments-off-note");
    });
    $$("[data-role=payments-off]").forEach(function (note) { note.hidden = false; });
    var auto = $("[data-role=auto-strip]");
    if (auto) {
      auto.textContent = "";
      auto.appendChild(el("span", { className: "badge badge--off", text: "Off" }));
      auto.appendChild(document.createTextNode(" Unavailable"));
    }
    var cardNode = $("[data-role=card-strip]");
    if (cardNode) cardNode.textContent = "Payments are not configured on this server";
  }

  // On load: what the page shows, and Stripe.js warmed up for the dialogs.
  getConfig().then(function (config) {
    if (!config.configured) {
      paymentsOff();
      return;
    }
    getStripe().catch(function () { /* said when a dialog needs it */ });
    if ($("[data-role=auto-strip]") || $("[data-role=auto-summary]")) {
      api("GET", "auto-top-up").then(function (state) {
        autoState = state;
        renderAutoEverywhere();
      }, function () { /* the server-rendered summary stays */ });
    }
    if ($("[data-role=saved-cards]") || $("[data-role=card-strip]")) {
      getCards().then(renderCardsEverywhere, function () { renderCardsEverywhere(null); });
    }
  }, function () {
    /* The buttons say it when clicked. */
  });

  // --- the page Alipay returns to ---------------------------------------------------------

  function initReturnPage() {
    var box = $("[data-topup-return]");
    if (!box) return;
    var state = $("[data-role=state]", box);
    var attempts = 0;

    function render(status, title, note) {
      state.textContent = "";
      state.setAttribute("data-status", status);
      if (status === "checking") {
        state.appendChild(el("span", { className: "spinner spinner--large", "aria-hidden": "true" }));
      } else {
        state.appendChild(el("span", { className: "result-icon result-icon--" + status, "aria-hidden": "true", text: status === "succeeded" ? "✓" : status === "failed" ? "!" : "…" }));
      }
      state.appendChild(el("p", { className: "result-title", text: title }));
      state.appendChild(el("p", { className: "muted", text: note }));
    }

    function check() {
      attempts += 1;
      api("GET", box.getAttribute("data-topup-return")).then(function (row) {
        if (row.status === "succeeded") {
          render("succeeded", "Payment received",
            box.getAttribute("data-total") + " added to your balance: " + box.getAttribute("data-amount") + " + " + box.getAttribute("data-bonus") + " bonus.");
        } else if (row.status === "mismatch") {
          render("pending", "Payment under review",
            (sentence(row.failure_message) || "This payment needs a check by our team.") + " Please do not pay again; we will get back to you.");
        } else if (row.status === "failed" || row.status === "canceled") {
          render("failed", "The payment did not go through",
            (sentence(row.failure_message) || "It was cancelled or declined.") + " Nothing was charged; you can try again from Pay As You Go.");
        } else if (attempts >= 20) {
          render("pending", "Payment still processing",
            "Your credits will appear as soon as Stripe confirms the payment. You can leave this page.");
        } else {
          setTimeout(check, attempts < 5 ? 1000 : 2000);
        }
      }, function (error) {
        render("failed", "Could not check this payment", error.message);
      });
    }
    check();
  }
})();
