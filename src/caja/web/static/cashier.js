// The cashier simulator: a store terminal calling the network API (/network/v1/...) from the
// browser. Each request is signed by the server (POST /_caja/cashier/sign), which keeps the
// sandbox network's secret; the page then sends exactly the body string that was signed.
// Amounts are integer centavos end to end: pesos typed here are parsed as text, never as floats.
(function () {
  "use strict";

  // --- money: exact text <-> centavos ---------------------------------------------------------

  function formatCentavos(centavos) {
    var sign = centavos < 0 ? "-" : "";
    var abs = Math.abs(centavos);
    var pesos = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = String(abs % 100).padStart(2, "0");
    return sign + "$" + pesos + "." + cents;
  }

  // "123.45", "$1,234.5", "1234 MXN" -> centavos; null when it is not a plain peso amount.
  // Parsed digit by digit: 0.29 * 100 is 28.999999999999996 in floating point.
  function parsePesos(text) {
    var t = String(text).trim().replace(/^\$\s*/, "").replace(/\s*MXN$/i, "");
    var m = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$/.exec(t);
    if (!m) {
      return null;
    }
    var whole = m[1].replace(/,/g, "").replace(/^0+(?=\d)/, "");
    if (whole.length > 10) {
      return null; // far beyond any store's limit, and still an exact integer below
    }
    return parseInt(whole, 10) * 100 + parseInt((m[2] || "").padEnd(2, "0"), 10);
  }

  function cleanReference(text) {
    return String(text).replace(/\s+/g, "");
  }

  // A store's own id for the transaction (the idempotency key). getRandomValues works on plain
  // http too, unlike crypto.randomUUID, so the sandbox may be served on any address.
  function newTransactionId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "sim-" + Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  window.CajaCashier = { formatCentavos: formatCentavos, parsePesos: parsePesos, cleanReference: cleanReference };

  var root = document.getElementById("terminal");
  if (!root) {
    return;
  }

  function $(id) {
    return document.getElementById(id);
  }

  var state = {
    lookup: null, // {id, reference, store, min, max} of the last payable lookup not yet used
    pending: null, // {key, id}: a payment sent without a definitive answer; a retry reuses its id
    paying: false,
    lastAuth: null,
  };

  // --- talking to the server ------------------------------------------------------------------

  function SessionEnded() {}

  async function signedPost(path, payload) {
    var body = JSON.stringify(payload);
    var signing = await fetch(root.dataset.sign, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Caja-Csrf": root.dataset.csrf },
      body: JSON.stringify({ method: "POST", path: path, body: body }),
    });
    if (signing.status === 401) {
      throw new SessionEnded();
    }
    if (!signing.ok) {
      throw new Error("no se pudo firmar la solicitud (" + signing.status + ")");
    }
    var headers = (await signing.json()).headers;
    headers["Content-Type"] = "application/json";
    var response = await fetch(path, { method: "POST", credentials: "omit", headers: headers, body: body });
    var data = null;
    try {
      data = await response.json();
    } catch (ignored) {
      data = null;
    }
    return { status: response.status, data: data };
  }

  // A Conekta error object's first message, else a generic one with the HTTP status.
  function errorMessage(result) {
    var details = result.data && result.data.details;
    if (details && details.length && details[0].message) {
      return details[0].message;
    }
    return "Error " + result.status + " de la API de redes.";
  }

  // --- showing results ------------------------------------------------------------------------

  function show(box, kind, lines) {
    box.replaceChildren();
    box.className = "result " + kind;
    lines.forEach(function (line, i) {
      var p = document.createElement("p");
      if (i === 0) {
        var strong = document.createElement("strong");
        strong.textContent = line;
        p.appendChild(strong);
      } else {
        p.textContent = line;
      }
      box.appendChild(p);
    });
  }

  function showFailure(box, code, message) {
    box.replaceChildren();
    box.className = "result bad";
    var p = document.createElement("p");
    var codeEl = document.createElement("span");
    codeEl.className = "failure-code";
    codeEl.textContent = code;
    var text = document.createElement("strong");
    text.className = "failure-message";
    text.textContent = message;
    p.append("Rechazo ", codeEl, " · ", text);
    box.appendChild(p);
  }

  function showError(box, error) {
    if (error instanceof SessionEnded) {
      box.replaceChildren();
      box.className = "result bad";
      var p = document.createElement("p");
      var link = document.createElement("a");
      link.href = root.dataset.login;
      link.textContent = "Vuelve a entrar";
      p.append("Tu sesión terminó. ", link, ".");
      box.appendChild(p);
      return;
    }
    show(box, "bad", ["Sin respuesta", String(error && error.message ? error.message : error)]);
  }

  function when(epochSeconds) {
    var d = epochSeconds ? new Date(epochSeconds * 1000) : new Date();
    return d.toLocaleString("es-MX");
  }

  function ticket(fields) {
    $("ticket").hidden = false;
    $("ticket").className = "ticket " + fields.kind;
    $("ticket-status").textContent = fields.status;
    $("ticket-auth-block").hidden = !fields.auth;
    $("ticket-auth").textContent = fields.auth || "";
    $("ticket-store").textContent = fields.store;
    $("ticket-reference").textContent = fields.reference;
    $("ticket-amount").textContent = formatCentavos(fields.amount) + " MXN";
    $("ticket-fee").textContent = fields.fee == null ? "—" : formatCentavos(fields.fee) + " MXN";
    $("ticket-transaction").textContent = fields.transaction;
    $("ticket-date").textContent = when(fields.at);
  }

  // --- 1. lookup ------------------------------------------------------------------------------

  $("lookup-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    var box = $("lookup-result");
    var reference = cleanReference($("reference").value);
    $("reference").value = reference;
    var store = $("store").value;
    if (!reference) {
      show(box, "bad", ["Escribe o pega una referencia."]);
      return;
    }
    var button = $("lookup-button");
    button.disabled = true;
    show(box, "busy", ["Consultando…"]);
    try {
      var result = await signedPost("/network/v1/lookups", { reference: reference, store: store });
      if (result.status !== 200) {
        state.lookup = null;
        show(box, "bad", ["No se pudo consultar", errorMessage(result)]);
      } else if (result.data.payable) {
        var d = result.data;
        state.lookup = { id: d.id, reference: reference, store: store, min: d.min_amount, max: d.max_amount };
        var range = formatCentavos(d.min_amount) + " – " + formatCentavos(d.max_amount) + " MXN";
        show(box, "ok", ["Referencia pagable", "Rango permitido: " + range].concat(
          d.customer_name ? ["Cliente: " + d.customer_name] : []
        ));
        $("amount").focus();
      } else {
        state.lookup = null;
        showFailure(box, result.data.failure_code, result.data.failure_message);
      }
    } catch (error) {
      showError(box, error);
    } finally {
      button.disabled = false;
    }
  });

  // --- 2. payment -----------------------------------------------------------------------------

  $("pay-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    // A second click (or Enter) while a payment is in flight must not send another one.
    if (state.paying) {
      return;
    }
    var box = $("pay-result");
    var reference = cleanReference($("reference").value);
    $("reference").value = reference;
    var store = $("store").value;
    var amount = parsePesos($("amount").value);
    if (!reference) {
      show(box, "bad", ["Escribe o pega una referencia."]);
      return;
    }
    if (amount === null) {
      show(box, "bad", ["Monto inválido", "Escribe el monto en pesos, por ejemplo 123.45"]);
      return;
    }
    // The same transaction id when the same payment is retried after no answer came back, so
    // the network API answers it once; anything different is a new transaction.
    var key = store + "\n" + reference + "\n" + amount;
    if (!state.pending || state.pending.key !== key) {
      state.pending = { key: key, id: newTransactionId() };
    }
    var transaction = state.pending.id;
    var payload = { reference: reference, amount: amount, store: store, transaction_id: transaction };
    var lookup = state.lookup;
    if (lookup && lookup.reference === reference && lookup.store === store) {
      payload.lookup_id = lookup.id;
    }
    state.paying = true;
    var button = $("pay-button");
    button.disabled = true;
    show(box, "busy", ["Cobrando " + formatCentavos(amount) + " MXN…"]);
    try {
      var result = await signedPost("/network/v1/payments", payload);
      if (result.status !== 200) {
        show(box, "bad", ["No se pudo cobrar", errorMessage(result)]);
        return;
      }
      state.pending = null; // answered: the next Cobrar is a new transaction
      var d = result.data;
      var facts = { store: store, reference: reference, amount: amount, transaction: transaction, fee: d.fee };
      if (d.status === "paid") {
        state.lookup = null; // a lookup pays once
        state.lastAuth = d.authorization_code;
        $("reverse-code").value = d.authorization_code;
        show(box, "ok", ["Pago aprobado", "Autorización " + d.authorization_code]);
        ticket(Object.assign(facts, { kind: "paid", status: "Pagado", auth: d.authorization_code, at: d.paid_at }));
      } else {
        showFailure(box, d.failure_code, d.failure_message);
        ticket(Object.assign(facts, {
          kind: "declined", status: "Rechazado " + d.failure_code + " · " + d.failure_message, auth: null, fee: null,
        }));
      }
    } catch (error) {
      showError(box, error);
    } finally {
      state.paying = false;
      button.disabled = false;
    }
  });

  // --- 3. reversal ----------------------------------------------------------------------------

  $("reverse-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    var box = $("reverse-result");
    var code = cleanReference($("reverse-code").value);
    $("reverse-code").value = code;
    if (!/^[0-9]{8}$/.test(code)) {
      show(box, "bad", ["El código de autorización tiene 8 dígitos."]);
      return;
    }
    var button = $("reverse-button");
    button.disabled = true;
    show(box, "busy", ["Reversando…"]);
    try {
      var result = await signedPost("/network/v1/reversals", { authorization_code: code });
      if (result.status === 200 && result.data.status === "reversed") {
        var d = result.data;
        show(box, "ok", ["Pago reversado", "Autorización " + code + " · " + formatCentavos(d.amount) + " MXN"]);
        if ($("ticket-auth").textContent === code) {
          $("ticket").className = "ticket reversed";
          $("ticket-status").textContent = "Reversado";
        }
      } else {
        show(box, "bad", ["Reversa rechazada", errorMessage(result)]);
      }
    } catch (error) {
      showError(box, error);
    } finally {
      button.disabled = false;
    }
  });
})();
