/*
 * Ringback click-to-call widget. Embed it where the form should appear:
 *
 *   <script src="https://GATEWAY/widget.js" data-campaign="ID" data-key="PUBLIC_KEY" defer></script>
 *
 * Optional attributes: data-lang (en or es; default the page's <html lang>,
 * then the browser's language), data-target (CSS selector of the element to
 * render into; default right after the script tag) and data-api (the
 * gateway's base URL; default the origin this script was loaded from).
 *
 * No dependencies, no inline code, no HTML from the server: it runs under a
 * Content-Security-Policy of script-src 'self'. The root element carries
 * data-state (idle, submitting, challenge, error, or the call's state) and,
 * while an error shows, data-error (its code), for scripts and tests.
 */
(() => {
  'use strict';

  const T = {
    en: {
      title: 'Talk to us now',
      intro: "Leave your number and we'll call you right away. It's free.",
      phone: 'Your phone number',
      hint: 'Include the country code, e.g. +1 555 123 4567.',
      name: 'Your name (optional)',
      consent: 'By pressing Call me you agree to receive a call from this company.',
      call: 'Call me',
      again: 'Call me again',
      sending: 'Sending your request…',
      robot: "Checking you're not a robot…",
      lost: "We can't show your call's progress right now, but it is on its way.",
      states: {
        queued: "Your call is queued. We'll call you in a moment…",
        scheduled: "We're closed now; we'll call you at {time}.",
        scheduledDay: "We're closed now; we'll call you on {time}.",
        scheduledSoon: "We're closed now; we'll call you as soon as we open.",
        calling_company: "We're calling the company; your phone will ring next.",
        calling_you: "We're calling you now…",
        connecting: 'Connecting you to the company…',
        connected: 'Connected. Enjoy your call!',
        redialing: "We couldn't reach you. Trying again in {n} s…",
        redialingNow: "We couldn't reach you. Trying again now…",
        ended: 'Call ended. Thanks!',
        canceled: 'The call was canceled.',
        failed_visitor: "We couldn't reach you.",
        failed_company: "We couldn't reach the company. They will call you back.",
        unknown: "We're working on your call…",
      },
      errors: {
        EMPTY_NUMBER: 'Please enter your phone number.',
        INVALID_NUMBER: 'Please check the number (include the country code).',
        INVALID_ARGUMENT: 'Please check the details you entered.',
        DESTINATION_NOT_SUPPORTED: "Sorry, we can't call numbers in that country or network.",
        BLOCKED_DESTINATION: "Sorry, we can't call that number.",
        DUPLICATE_IN_PROGRESS: "We're already calling you. Please wait for that call.",
        CAMPAIGN_CLOSED: "We're closed right now. Please try again during our opening hours.",
        CAMPAIGN_DISABLED: 'Calls from this page are turned off right now.',
        INVALID_KEY: "This call button isn't set up correctly. Please contact the company another way.",
        CAMPAIGN_NOT_FOUND: "This call button isn't set up correctly. Please contact the company another way.",
        ORIGIN_NOT_ALLOWED: "This call button isn't allowed on this website.",
        INSUFFICIENT_BALANCE: "Sorry, we can't take calls right now. Please try again later.",
        CHALLENGE_REQUIRED: "We couldn't verify your request. Please try again.",
        RATE_LIMITED: 'Too many attempts. Please try again in {n} minutes.',
        RATE_LIMITED_1: 'Too many attempts. Please try again in 1 minute.',
        UNAVAILABLE: "Sorry, we can't take calls right now. Please try again in a moment.",
        NETWORK: "We couldn't connect. Please check your connection and try again.",
        UNKNOWN: 'Something went wrong. Please try again later.',
      },
    },
    es: {
      title: 'Hablemos ahora',
      intro: 'Déjanos tu número y te llamamos enseguida. Es gratis.',
      phone: 'Tu número de teléfono',
      hint: 'Incluye el código de país, p. ej. +34 612 345 678.',
      name: 'Tu nombre (opcional)',
      consent: 'Al pulsar Llámame aceptas recibir una llamada de esta empresa.',
      call: 'Llámame',
      again: 'Volver a llamarme',
      sending: 'Enviando tu solicitud…',
      robot: 'Comprobando que no eres un robot…',
      lost: 'Ahora no podemos mostrar el progreso de tu llamada, pero está en camino.',
      states: {
        queued: 'Tu llamada está en cola. Te llamamos en un momento…',
        scheduled: 'Ahora estamos cerrados; te llamaremos a las {time}.',
        scheduledDay: 'Ahora estamos cerrados; te llamaremos el {time}.',
        scheduledSoon: 'Ahora estamos cerrados; te llamaremos en cuanto abramos.',
        calling_company: 'Estamos llamando a la empresa; después sonará tu teléfono.',
        calling_you: 'Te estamos llamando…',
        connecting: 'Te estamos conectando con la empresa…',
        connected: 'Conectado. ¡Disfruta de tu llamada!',
        redialing: 'No pudimos comunicarnos contigo. Lo intentaremos de nuevo en {n} s…',
        redialingNow: 'No pudimos comunicarnos contigo. Lo intentamos de nuevo ahora…',
        ended: 'Llamada finalizada. ¡Gracias!',
        canceled: 'La llamada se canceló.',
        failed_visitor: 'No pudimos comunicarnos contigo.',
        failed_company: 'No pudimos comunicarnos con la empresa. Te devolverán la llamada.',
        unknown: 'Estamos gestionando tu llamada…',
      },
      errors: {
        EMPTY_NUMBER: 'Escribe tu número de teléfono.',
        INVALID_NUMBER: 'Revisa el número (incluye el código de país).',
        INVALID_ARGUMENT: 'Revisa los datos que has escrito.',
        DESTINATION_NOT_SUPPORTED: 'Lo sentimos, no podemos llamar a números de ese país o red.',
        BLOCKED_DESTINATION: 'Lo sentimos, no podemos llamar a ese número.',
        DUPLICATE_IN_PROGRESS: 'Ya te estamos llamando. Espera esa llamada.',
        CAMPAIGN_CLOSED: 'Ahora estamos cerrados. Inténtalo de nuevo en nuestro horario de atención.',
        CAMPAIGN_DISABLED: 'Las llamadas desde esta página están desactivadas en este momento.',
        INVALID_KEY: 'Este botón de llamada no está bien configurado. Contacta con la empresa por otra vía.',
        CAMPAIGN_NOT_FOUND: 'Este botón de llamada no está bien configurado. Contacta con la empresa por otra vía.',
        ORIGIN_NOT_ALLOWED: 'Este botón de llamada no está permitido en este sitio web.',
        INSUFFICIENT_BALANCE: 'Lo sentimos, ahora no podemos atender llamadas. Inténtalo más tarde.',
        CHALLENGE_REQUIRED: 'No pudimos verificar tu solicitud. Inténtalo de nuevo.',
        RATE_LIMITED: 'Demasiados intentos. Inténtalo de nuevo dentro de {n} minutos.',
        RATE_LIMITED_1: 'Demasiados intentos. Inténtalo de nuevo dentro de 1 minuto.',
        UNAVAILABLE: 'Lo sentimos, ahora no podemos atender llamadas. Inténtalo de nuevo en un momento.',
        NETWORK: 'No pudimos conectar. Revisa tu conexión e inténtalo de nuevo.',
        UNKNOWN: 'Algo salió mal. Inténtalo de nuevo más tarde.',
      },
    },
  };

  const FINAL = ['ended', 'canceled', 'failed_visitor', 'failed_company'];
  // Errors about the number: the input is marked invalid and gets the focus.
  const FIELD = ['EMPTY_NUMBER', 'INVALID_NUMBER', 'INVALID_ARGUMENT', 'DESTINATION_NOT_SUPPORTED', 'BLOCKED_DESTINATION'];
  const KIND = { connected: 'ok', ended: 'ok', canceled: 'bad', failed_visitor: 'bad', failed_company: 'bad' };

  const CSS = `
.rb-c2c{box-sizing:border-box;max-width:26rem;margin:0;padding:1.25rem;border:1px solid #c5cad3;border-radius:.75rem;background:#fff;color:#1b1f24;font-size:1rem;line-height:1.45;text-align:left}
.rb-c2c *,.rb-c2c *::before{box-sizing:inherit}
.rb-c2c [hidden]{display:none!important}
.rb-c2c-title{margin:0 0 .25rem;font-size:1.25rem;font-weight:700}
.rb-c2c-intro,.rb-c2c-hint,.rb-c2c-consent{margin:0 0 .75rem}
.rb-c2c-hint,.rb-c2c-consent{font-size:.875rem;color:#4a5260}
.rb-c2c-label{display:block;margin:0 0 .25rem;font-weight:600}
.rb-c2c-input{display:block;width:100%;margin:0 0 .25rem;padding:.55rem .75rem;border:1px solid #6b7280;border-radius:.5rem;background:#fff;color:inherit;font:inherit}
.rb-c2c-input[aria-invalid=true]{border:2px solid #b42318}
.rb-c2c-error{margin:0 0 .75rem;padding:.5rem .75rem;border-left:4px solid #b42318;background:#fef3f2;color:#7a1a12;font-weight:600}
.rb-c2c-button{min-height:2.75rem;padding:.55rem 1.4rem;border:2px solid #1a56db;border-radius:.5rem;background:#1a56db;color:#fff;font:inherit;font-weight:700;cursor:pointer}
.rb-c2c-button:hover{background:#1543a8;border-color:#1543a8}
.rb-c2c-button:disabled{background:#6b7280;border-color:#6b7280;cursor:progress}
.rb-c2c-again{margin-top:.75rem;background:#fff;color:#1a56db}
.rb-c2c-again:hover{background:#eef3fd;color:#1543a8}
.rb-c2c:focus{outline:none}
.rb-c2c :focus-visible,.rb-c2c:focus-visible{outline:3px solid #1a56db;outline-offset:2px}
.rb-c2c-status{margin:.75rem 0 0;padding:.5rem .75rem;border-left:4px solid #1a56db;background:#eef3fd;font-weight:600}
.rb-c2c-status[data-kind=ok]{border-color:#067647;background:#ecfdf3}
.rb-c2c-status[data-kind=ok]::before{content:"\\2713  "}
.rb-c2c-status[data-kind=bad]{border-color:#b42318;background:#fef3f2}
.rb-c2c-status[data-kind=bad]::before{content:"\\2715  "}
.rb-c2c-meter{display:block;width:100%;margin-top:.5rem}
.rb-c2c-sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;border:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

  const fmt = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => String(vars[k]));

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs) {
      if (attrs[k] === true) e.setAttribute(k, '');
      else if (attrs[k] != null && attrs[k] !== false) e.setAttribute(k, attrs[k]);
    }
    for (const kid of kids) e.append(kid); // strings become text nodes
    return e;
  }

  function injectCSS() {
    if (document.getElementById('rb-c2c-style')) return;
    const s = h('style', { id: 'rb-c2c-style' });
    s.textContent = CSS;
    (document.head || document.documentElement).append(s);
  }

  // The visitor's own locale when it is in the widget's language (es-MX
  // dates for a Mexican visitor), else the widget's language.
  function localeFor(lang, asked) {
    const tags = (navigator.languages || [navigator.language]).concat(asked);
    return tags.find((l) => l && l.toLowerCase().split('-')[0] === lang) || lang;
  }

  // --- proof of work ---------------------------------------------------------

  function zeroBits(b) {
    let z = 0;
    for (const x of b) {
      if (x) return z + Math.clz32(x) - 24;
      z += 8;
    }
    return z;
  }

  // A plain SHA-256 for pages without crypto.subtle (it exists only in
  // secure contexts: https or localhost).
  let K, H0;
  function sha256(msg) {
    if (!K) {
      K = [];
      H0 = [];
      for (let p = 2; K.length < 64; p++) {
        let prime = true;
        for (let d = 2; d * d <= p; d++) if (p % d === 0) prime = false;
        if (!prime) continue;
        if (H0.length < 8) H0.push(((p ** (1 / 2)) % 1) * 2 ** 32 | 0);
        K.push(((p ** (1 / 3)) % 1) * 2 ** 32 | 0);
      }
    }
    const len = msg.length, n = ((len + 9 + 63) >> 6) << 4, w = new Uint32Array(n), H = H0.slice(), W = new Uint32Array(64);
    for (let i = 0; i < len; i++) w[i >> 2] |= msg[i] << (24 - (i % 4) * 8);
    w[len >> 2] |= 0x80 << (24 - (len % 4) * 8);
    w[n - 1] = len * 8;
    const r = (x, c) => (x >>> c) | (x << (32 - c));
    for (let j = 0; j < n; j += 16) {
      let [a, b, c, d, e, f, g, hh] = H;
      for (let i = 0; i < 64; i++) {
        W[i] = i < 16 ? w[j + i]
          : (r(W[i - 2], 17) ^ r(W[i - 2], 19) ^ (W[i - 2] >>> 10)) + W[i - 7] + (r(W[i - 15], 7) ^ r(W[i - 15], 18) ^ (W[i - 15] >>> 3)) + W[i - 16];
        const t1 = hh + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i] | 0;
        const t2 = (r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c)) | 0;
        [hh, g, f, e, d, c, b, a] = [g, f, e, d + t1 | 0, c, b, a, t1 + t2 | 0];
      }
      [a, b, c, d, e, f, g, hh].forEach((v, i) => { H[i] = H[i] + v | 0; });
    }
    const out = new Uint8Array(32);
    H.forEach((v, i) => { out[i * 4] = v >>> 24; out[i * 4 + 1] = v >>> 16; out[i * 4 + 2] = v >>> 8; out[i * 4 + 3] = v; });
    return out;
  }

  // A task boundary that hidden tabs do not throttle, unlike setTimeout.
  const yieldUI = () => new Promise((ok) => {
    const c = new MessageChannel();
    c.port1.onmessage = () => ok();
    c.port2.postMessage(0);
  });

  // solve finds a decimal nonce such that SHA-256(challenge + ":" + nonce)
  // starts with `bits` zero bits, hashing in batches between which the page
  // stays responsive. progress gets the chance it would be done by now.
  async function solve(challenge, bits, alive, progress) {
    const enc = new TextEncoder(), subtle = window.crypto && crypto.subtle;
    const digest = subtle ? (b) => subtle.digest('SHA-256', b) : (b) => sha256(b);
    for (let n = 0; alive();) {
      const start = n, batch = [];
      for (const end = n + 1000; n < end; n++) batch.push(digest(enc.encode(challenge + ':' + n)));
      const hs = await Promise.all(batch);
      for (let i = 0; i < hs.length; i++) if (zeroBits(new Uint8Array(hs[i])) >= bits) return String(start + i);
      progress(1 - Math.exp(-n / 2 ** bits));
      await yieldUI();
    }
    return null;
  }

  // --- one widget ------------------------------------------------------------

  function mount(script) {
    const ds = script.dataset;
    ds.rbC2cMounted = '';
    if (!ds.campaign || !ds.key) {
      console.error('ringback widget: data-campaign and data-key are required on', script);
      return;
    }
    const asked = ds.lang || document.documentElement.lang || navigator.language || 'en';
    const lang = T[asked.toLowerCase().split('-')[0]] ? asked.toLowerCase().split('-')[0] : 'en';
    const t = T[lang], locale = localeFor(lang, ds.lang);
    const api = (ds.api || new URL(script.src || '', location.href).origin).replace(/\/+$/, '');
    const abs = (u) => (/^https?:/.test(u) ? u : api + u);

    let n = 1;
    while (document.getElementById('rb-c2c-' + n)) n++;
    const id = 'rb-c2c-' + n;

    const tel = h('input', {
      id: id + '-tel', class: 'rb-c2c-input', type: 'tel', name: 'tel', autocomplete: 'tel',
      inputmode: 'tel', required: true, 'aria-describedby': id + '-hint',
    });
    const who = h('input', { id: id + '-name', class: 'rb-c2c-input', type: 'text', name: 'name', autocomplete: 'name', maxlength: 100 });
    const errText = h('span', {});
    const err = h('p', { id: id + '-error', class: 'rb-c2c-error', tabindex: -1, hidden: true }, h('span', { 'aria-hidden': 'true' }, '⚠ '), errText);
    const button = h('button', { type: 'submit', class: 'rb-c2c-button', 'aria-describedby': id + '-consent' }, t.call);
    const form = h('form', { class: 'rb-c2c-form', novalidate: true },
      h('label', { for: tel.id, class: 'rb-c2c-label' }, t.phone), tel,
      h('p', { id: id + '-hint', class: 'rb-c2c-hint' }, t.hint), err,
      h('label', { for: who.id, class: 'rb-c2c-label' }, t.name), who,
      h('p', { id: id + '-consent', class: 'rb-c2c-consent' }, t.consent), button);
    // What is seen (with a live countdown) and what is announced (once per
    // change: a ticking number would interrupt a screen reader every second).
    const status = h('p', { class: 'rb-c2c-status', 'aria-hidden': 'true', hidden: true });
    const live = h('div', { class: 'rb-c2c-sr', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
    const meter = h('progress', { class: 'rb-c2c-meter', max: 100, value: 0, 'aria-hidden': 'true', hidden: true });
    const again = h('button', { type: 'button', class: 'rb-c2c-button rb-c2c-again', hidden: true }, t.again);
    const intro = h('p', { class: 'rb-c2c-intro' }, t.intro);
    const root = h('section', { id, class: 'rb-c2c', lang, tabindex: -1, 'aria-labelledby': id + '-title', 'data-state': 'idle' },
      h('p', { id: id + '-title', class: 'rb-c2c-title' }, t.title), intro, form, status, meter, live, again);

    injectCSS();
    const target = ds.target && document.querySelector(ds.target);
    if (ds.target && !target) console.warn('ringback widget: no element matches data-target', ds.target);
    if (target) target.append(root);
    else script.after(root);

    let session = null; // the request or call being followed

    // Focus follows the widget only when it has it: never steal it from
    // the rest of the page.
    const ours = () => root.contains(document.activeElement) || document.activeElement === document.body;

    function show(state, text, kind) {
      root.dataset.state = state;
      delete root.dataset.error;
      status.hidden = !text;
      status.textContent = text;
      if (kind) status.dataset.kind = kind;
      else delete status.dataset.kind;
      // The same words again (a resent or polled view) are not re-announced.
      if (live.textContent !== text) live.textContent = text;
    }

    function clearError() {
      err.hidden = true;
      errText.textContent = '';
      tel.removeAttribute('aria-invalid');
      tel.setAttribute('aria-describedby', id + '-hint');
    }

    function showError(code, detail) {
      let msg = t.errors[code];
      if (!msg) {
        msg = t.errors.UNKNOWN;
        console.warn('ringback widget: error', code, detail && detail.message);
      }
      if (code === 'RATE_LIMITED') {
        const min = Math.max(1, Math.ceil((parseInt(detail && detail.retryAfter, 10) || 60) / 60));
        msg = min === 1 ? t.errors.RATE_LIMITED_1 : fmt(msg, { n: min });
      }
      show('error', '');
      root.dataset.error = code;
      meter.hidden = true;
      errText.textContent = msg;
      err.hidden = false;
      if (FIELD.includes(code)) {
        tel.setAttribute('aria-invalid', 'true');
        tel.setAttribute('aria-describedby', err.id + ' ' + id + '-hint');
        // Moving the focus reads the field with its error; when it is there
        // already (Enter in the field), only an announcement will.
        if (document.activeElement === tel) live.textContent = msg;
        else tel.focus();
      } else {
        err.focus();
      }
    }

    function stop(s) {
      if (!s) return;
      s.closed = true;
      clearInterval(s.tick);
      if (s.es) s.es.close();
    }

    async function post(body) {
      const resp = await fetch(api + '/v1/campaigns/' + encodeURIComponent(ds.campaign) + '/click2call', {
        method: 'POST', credentials: 'omit',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
      });
      let data = null;
      try {
        data = await resp.json();
      } catch (e) { /* not JSON: judged by the status below */ }
      if (resp.ok && data && data.call) return { data };
      const e = (data && data.error) || {};
      return {
        code: e.code || (resp.status === 429 ? 'RATE_LIMITED' : resp.status >= 500 ? 'UNAVAILABLE' : 'HTTP_' + resp.status),
        message: e.message, challenge: e.challenge, retryAfter: resp.headers.get('Retry-After'),
      };
    }

    async function submit() {
      clearError();
      const number = tel.value.trim();
      if (!number) return showError('EMPTY_NUMBER');
      if (/[^\d\s+().\-/]/.test(number) || number.replace(/\D/g, '').length < 4) return showError('INVALID_NUMBER');
      // The consent is the words the visitor saw, kept with the call.
      const body = { number, key: ds.key, consent: t.consent };
      if (who.value.trim()) body.name = who.value.trim();
      const s = session = { closed: false };
      button.disabled = true;
      show('submitting', t.sending);
      try {
        for (let round = 0; ; round++) {
          const res = await post(body);
          if (s.closed) return;
          if (res.data) return started(s, res.data);
          const ch = res.challenge;
          if (res.code !== 'CHALLENGE_REQUIRED' || !ch || !ch.challenge || round >= 3) {
            button.disabled = false;
            return showError(res.code, res);
          }
          show('challenge', t.robot);
          meter.hidden = false;
          meter.value = 0;
          let said = Date.now();
          body.challenge = ch.challenge;
          body.nonce = await solve(ch.challenge, Math.min(ch.bits | 0, 32), () => !s.closed, (p) => {
            const pct = Math.min(99, Math.floor(p * 100));
            meter.value = pct;
            status.textContent = t.robot + ' ' + pct + ' %';
            if (Date.now() - said > 3000) { // politely, not every batch
              said = Date.now();
              live.textContent = status.textContent;
            }
          });
          if (s.closed) return;
          meter.hidden = true;
          show('submitting', t.sending);
        }
      } catch (e) {
        console.warn('ringback widget: request failed', e);
        if (s.closed) return;
        button.disabled = false;
        showError('NETWORK');
      }
    }

    function started(s, data) {
      button.disabled = false;
      form.hidden = intro.hidden = true;
      if (ours()) root.focus();
      render(s, data.call);
      if (s.closed) return;
      const pollURL = api + '/v1/calls/' + encodeURIComponent(data.call.id) + '?token=' + encodeURIComponent(data.token);
      if (!window.EventSource || !data.eventsUrl) return poll(s, pollURL);
      const es = s.es = new EventSource(abs(data.eventsUrl));
      let errors = 0;
      es.addEventListener('status', (ev) => {
        errors = 0;
        let v = null;
        try {
          v = JSON.parse(ev.data).call;
        } catch (e) { /* ignored: the next one counts */ }
        if (v) render(s, v);
      });
      es.onerror = () => {
        // EventSource reconnects by itself; polling takes over when it
        // gives up or keeps failing.
        if (s.closed || (es.readyState !== EventSource.CLOSED && ++errors < 3)) return;
        es.close();
        s.es = null;
        poll(s, pollURL);
      };
    }

    async function poll(s, url) {
      for (let fails = 0; !s.closed;) {
        try {
          const resp = await fetch(url, { credentials: 'omit', headers: { Accept: 'application/json' } });
          const d = await resp.json();
          if (s.closed) return;
          if (resp.ok && d && d.call) {
            fails = 0;
            render(s, d.call);
          } else if (resp.status === 404 || resp.status === 401 || resp.status === 403) {
            fails = 60;
          } else {
            fails++;
          }
        } catch (e) {
          fails++;
        }
        if (s.closed) return;
        if (fails >= 60) {
          show(root.dataset.state, t.lost);
          root.dataset.error = 'STATUS_UNAVAILABLE';
          return finish(s);
        }
        await new Promise((ok) => setTimeout(ok, 1000));
      }
    }

    function when(iso) {
      const d = new Date(iso);
      const today = d.toDateString() === new Date().toDateString();
      const opts = today ? { hour: 'numeric', minute: '2-digit' }
        : { weekday: 'long', day: 'numeric', month: 'long', hour: 'numeric', minute: '2-digit' };
      return [today, new Intl.DateTimeFormat(locale, opts).format(d)];
    }

    function render(s, v) {
      // retryInS changes with every look at the same state: not a change.
      const seen = [v.state, v.attempt, v.nextAttemptAt].join('|');
      if (s.closed || seen === s.seen) return;
      s.seen = seen;
      clearInterval(s.tick);
      const st = v.state, m = t.states;
      let text = m[st] || m.unknown;
      if (!m[st]) console.warn('ringback widget: unknown call state', st);
      if (st === 'scheduled') {
        if (v.nextAttemptAt && !isNaN(Date.parse(v.nextAttemptAt))) {
          const [today, time] = when(v.nextAttemptAt);
          text = fmt(today ? m.scheduled : m.scheduledDay, { time });
        } else {
          text = m.scheduledSoon;
        }
      } else if (st === 'redialing') {
        const due = v.retryInS != null ? Date.now() + v.retryInS * 1000 : Date.parse(v.nextAttemptAt) || Date.now();
        const left = () => Math.max(0, Math.ceil((due - Date.now()) / 1000));
        const say = () => (left() > 0 ? fmt(m.redialing, { n: left() }) : m.redialingNow);
        text = say();
        s.tick = setInterval(() => {
          status.textContent = say();
          if (!left()) clearInterval(s.tick);
        }, 1000);
      }
      show(st, text, KIND[st]);
      if (FINAL.includes(st)) finish(s);
    }

    function finish(s) {
      const focus = ours();
      stop(s);
      again.hidden = false;
      if (focus) again.focus();
    }

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!button.disabled) submit();
    });
    again.addEventListener('click', () => {
      // The same number and name stay filled in: "again" is one press away.
      stop(session);
      session = null;
      again.hidden = true;
      meter.hidden = true;
      clearError();
      show('idle', '');
      form.hidden = intro.hidden = false;
      tel.focus();
    });
  }

  const me = document.currentScript;
  if (me && me.dataset.campaign) mount(me);
  else document.querySelectorAll('script[data-campaign]:not([data-rb-c2c-mounted])').forEach(mount);
})();
