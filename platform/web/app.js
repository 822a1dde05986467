// faultdrill shop — the front end of `faultdrill serve`.
// Plain JS, no build step, no framework, no network beyond this origin.
// The JSON it speaks is the contract in the server's api-shapes notes:
// money arrives as decimal currency units, ids are integers, errors are
// {"error": "...", "detail": string|object|null}.
'use strict';

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const USER_KEY = 'faultdrill.user';
  const POLL_MS = 1000;          // the redundancy panel's refresh period
  const ABSENT_RECHECK_MS = 5000; // how often a 404 "not configured" panel is asked again
  const ACTION_TIMEOUT_MS = 15000;
  const POLL_TIMEOUT_MS = 3000;
  // The errnos the fault layer injects (faults/catalog.c; EINTR and EAGAIN are refused: retried, not failures).
  const ERRNOS = ['EIO', 'ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'ENOMEM', 'EFBIG'];

  const state = {
    user: null,                  // {id, name, email}
    products: new Map(),         // id -> Product, every product seen (names for cart/orders/errors)
    cart: null,                  // Cart
    orders: [],
    catalogSeq: 0,               // ignores out-of-order product list answers
    reachable: null,             // last heartbeat outcome (null: not known yet)
    panels: {},                  // path -> {absent: bool, nextCheck: ms}
    faultRowsKey: '',
    last: {},                    // the last summary of each redundancy panel (kept while unreachable)
  };

  // ---- HTTP ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const b = body && typeof body === 'object' ? body : { error: String(body || ''), detail: null };
      super(b.error || `HTTP ${status}`);
      this.status = status;
      this.body = b;
    }
  }
  class NetworkError extends Error {
    constructor(cause, timedOut) {
      super(timedOut ? 'the server did not answer in time' : 'the server is unreachable');
      this.cause = cause;
      this.timedOut = timedOut;
    }
  }

  async function api(method, path, body, timeoutMs = ACTION_TIMEOUT_MS) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const headers = { Accept: 'application/json' };
    // every state-changing request says JSON, body or not: the server refuses
    // the others as cross-site (DESIGN.md section 7)
    if (body !== undefined || method !== 'GET') headers['Content-Type'] = 'application/json';
    let res;
    let text;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store', signal: ctl.signal,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await res.text();
    } catch (e) {
      throw new NetworkError(e, ctl.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { error: text.slice(0, 200), detail: null }; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  const enc = encodeURIComponent;

  // ---- Formatting ---------------------------------------------------------

  function money(v) {
    const n = typeof v === 'number' ? v : Number(v);
    return Number.isFinite(n) ? n.toFixed(2) : '–';
  }
  function productName(id, fallback) {
    const p = state.products.get(Number(id));
    if (p) return p.name;
    const item = state.cart && state.cart.items.find((i) => i.productId === Number(id));
    return item ? item.name : (fallback || `product #${id}`);
  }
  function when(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso || '–') : d.toLocaleString();
  }
  function ago(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso ? String(iso) : '–';
    const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    const rel = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
    return `${d.toLocaleTimeString()} (${rel})`;
  }
  function duration(sec) {
    const s = Math.floor(Number(sec) || 0);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  function label(key) {
    return key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_-]/g, ' ').replace(/^./, (c) => c.toUpperCase());
  }
  function scalar(key, v) {
    if (v === null || v === undefined || v === '') return '–';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number') {
      const t = Number.isInteger(v) ? String(v) : v.toFixed(2);
      return /seconds$/i.test(key) ? `${t} s` : t;
    }
    if (Array.isArray(v)) return v.length ? v.map((x) => scalar('', x)).join(', ') : 'none';
    if (typeof v === 'object') {
      return Object.entries(v).map(([k, x]) => (x && typeof x === 'object' && !Array.isArray(x)
        ? `${k}: ${scalar(k, x)}` : `${k} ${scalar(k, x)}`)).join(' · ');
    }
    if (/^\d{4}-\d\d-\d\dT/.test(v)) return ago(v);
    return String(v);
  }
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // ---- Messages -----------------------------------------------------------

  let messageTimer = 0;
  function say(text, kind = 'info') {
    const box = $('#message');
    $('#message-text').textContent = text;
    box.dataset.kind = kind;
    box.className = `message ${kind}`;
    box.hidden = false;
    clearTimeout(messageTimer);
    if (kind === 'ok' || kind === 'info') messageTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function detailText(body) {
    const d = body && body.detail;
    if (d === null || d === undefined || d === '') return '';
    return typeof d === 'string' ? d : scalar('', d);
  }

  // Which product a 409 "insufficient stock" is about, and the figures, from
  // the detail whether it is a sentence ("product 3 has 2, the cart wants 5")
  // or an object ({productId: 3, stock: 2, requested: 5}).
  function stockProblem(body) {
    const d = body && body.detail;
    const out = { productId: null, left: null, asked: null };
    if (d && typeof d === 'object') {
      out.productId = d.productId ?? d.product ?? d.id ?? null;
      out.left = d.stock ?? d.available ?? d.left ?? d.has ?? null;
      out.asked = d.requested ?? d.wanted ?? d.asked ?? d.quantity ?? null;
      return out;
    }
    const text = `${typeof d === 'string' ? d : ''} ${body && body.error ? body.error : ''}`;
    let m = text.match(/product\s*#?\s*(\d+)/i);
    if (m) out.productId = Number(m[1]);
    m = text.match(/has\s+(\d+)/i) || text.match(/(\d+)\s+left/i);
    if (m) out.left = Number(m[1]);
    m = text.match(/wants\s+(\d+)/i) || text.match(/(\d+)\s+(?:asked|requested|wanted)/i);
    if (m) out.asked = Number(m[1]);
    return out;
  }

  function stockMessage(problem) {
    const name = productName(problem.productId);
    let figures = '';
    if (problem.left !== null) {
      figures = problem.left === 0 ? ': it is sold out' : `: only ${problem.left} left`;
      if (problem.asked !== null) figures += `, you asked for ${problem.asked}`;
    }
    return `Not enough stock for “${name}”${figures}. Nothing was ordered and nothing was charged; ` +
      'change the quantity in your cart and check out again.';
  }

  // After a 409 whose detail names no product: compare the cart with fresh stock.
  async function findShortProduct() {
    try {
      const all = await api('GET', '/products');
      rememberProducts(all);
      const items = (state.cart && state.cart.items) || [];
      const short = items.find((i) => {
        const p = state.products.get(i.productId);
        return p && p.stock < i.quantity;
      });
      if (short) {
        const p = state.products.get(short.productId);
        return { productId: short.productId, left: p.stock, asked: short.quantity };
      }
    } catch (_) { /* the generic message stands */ }
    return null;
  }

  // One sentence a shopper can act on, for any failure of an action.
  function explain(err, what, isWrite) {
    if (err instanceof NetworkError) {
      let t = err.timedOut
        ? `The server did not answer while ${what}.`
        : `The server is unreachable, so ${what} did not happen. Is faultdrill serve running?`;
      if (isWrite && err.timedOut) t += ' The change may or may not have been made: check your cart and order history once the server answers again.';
      return t;
    }
    if (!(err instanceof ApiError)) return `Something went wrong while ${what}: ${err.message}`;
    const detail = detailText(err.body);
    const why = detail ? ` (${detail})` : '';
    switch (err.status) {
      case 503:
        return isWrite
          ? `The shop's storage is down: nothing was saved and nothing was charged. Try again when the redundancy panel shows the storage back.${detail ? ` Server: ${detail}.` : ''}`
          : `The shop's storage is down: the data cannot be read right now.${detail ? ` Server: ${detail}.` : ''}`;
      case 500:
        if (/outcome unknown/i.test(err.body.error || '')) {
          return `The outcome of ${what} is unknown: the storage could not confirm it. Check your order history before trying again — it may have gone through.`;
        }
        return `The server failed while ${what}: ${err.message}${why}.`;
      case 413:
        return 'That request is too large for the server.';
      default:
        return `The server refused ${what}: ${err.message}${why}.`;
    }
  }

  // ---- Catalog ------------------------------------------------------------

  function rememberProducts(list) {
    for (const p of list || []) state.products.set(p.id, p);
    const select = $('#category');
    const have = new Set([...select.options].map((o) => o.value));
    const cats = [...new Set((list || []).map((p) => p.category).filter(Boolean))].sort();
    for (const c of cats) if (!have.has(c)) select.append(el('option', { value: c, text: c }));
  }

  function filters() {
    const q = $('#search').value.trim();
    const category = $('#category').value;
    const inStock = $('#in-stock').checked;
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (category) params.set('category', category);
    if (inStock) params.set('inStock', 'true');
    return params;
  }

  async function loadProducts() {
    const seq = ++state.catalogSeq;
    const params = filters();
    const grid = $('#products');
    grid.setAttribute('aria-busy', 'true');
    try {
      const list = await api('GET', `/products${params.toString() ? `?${params}` : ''}`);
      if (seq !== state.catalogSeq) return; // a newer search is under way
      rememberProducts(list);
      renderProducts(list, params.toString() !== '');
    } catch (err) {
      if (seq !== state.catalogSeq) return;
      grid.replaceChildren(el('p', { class: 'empty error-text', text: explain(err, 'loading the products', false) }));
      $('#product-count').textContent = '';
    } finally {
      if (seq === state.catalogSeq) grid.removeAttribute('aria-busy');
    }
  }

  // All products once (for the category list and names), then the filtered view.
  async function refreshCatalog() {
    if (filters().toString()) {
      try { rememberProducts(await api('GET', '/products')); } catch (_) { /* loadProducts says it */ }
    }
    await loadProducts();
  }

  function renderProducts(list, filtered) {
    const grid = $('#products');
    const tpl = $('#product-card-tpl');
    const typed = new Map(); // quantities being typed survive a refresh of the grid
    for (const c of grid.querySelectorAll('[data-product-id]')) typed.set(c.dataset.productId, $('.qty', c).value);
    $('#product-count').textContent = `${list.length} product${list.length === 1 ? '' : 's'}`;
    if (list.length === 0) {
      grid.replaceChildren(el('p', { class: 'empty', text: filtered ? 'No products match these filters.' : 'The shop has no products yet.' }));
      return;
    }
    grid.replaceChildren(...list.map((p) => {
      const card = tpl.content.firstElementChild.cloneNode(true);
      card.dataset.productId = p.id;
      card.id = `product-${p.id}`;
      const cat = $('.category', card);
      cat.textContent = p.category || '';
      cat.hidden = !p.category;
      const stock = $('.stock', card);
      stock.textContent = p.stock <= 0 ? 'Sold out' : p.stock <= 3 ? `Only ${p.stock} left` : `${p.stock} in stock`;
      stock.className = `stock ${p.stock <= 0 ? 'out' : p.stock <= 3 ? 'low' : 'ok'}`;
      stock.dataset.stock = p.stock;
      $('.product-name', card).textContent = p.name;
      $('.product-desc', card).textContent = p.description || '';
      $('.price', card).textContent = money(p.price);
      const qty = $('.qty', card);
      qty.max = Math.max(1, p.stock);
      if (typed.has(String(p.id))) qty.value = typed.get(String(p.id));
      qty.disabled = p.stock <= 0;
      const add = $('.add', card);
      add.disabled = p.stock <= 0;
      add.addEventListener('click', () => addToCart(p, qty, add));
      return card;
    }));
  }

  // ---- Account ------------------------------------------------------------

  function setUser(user, quiet) {
    state.user = user;
    if (user) localStorage.setItem(USER_KEY, JSON.stringify(user));
    else localStorage.removeItem(USER_KEY);
    $('#auth-form').hidden = !!user;
    $('#account-info').hidden = !user;
    $('#account-name').textContent = user ? user.name : '';
    $('#account-email').textContent = user ? user.email : '';
    if (!user) {
      state.cart = null;
      state.orders = [];
      renderCart();
      renderOrders();
      return;
    }
    if (!quiet) say(`Signed in as ${user.name} (${user.email}).`, 'ok');
    loadCart();
    loadOrders();
  }

  function authInputs() {
    return { email: $('#auth-email').value.trim(), name: $('#auth-name').value.trim() };
  }

  async function signIn(ev) {
    if (ev) ev.preventDefault();
    const { email } = authInputs();
    if (!email) { say('Enter your email to sign in.', 'warn'); $('#auth-email').focus(); return; }
    await busy($('#signin-btn'), async () => {
      try {
        setUser(await api('GET', `/users/${enc(email)}`));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          say(`There is no account for ${email}. Enter your name and choose “Create account”.`, 'warn');
          $('#auth-name').focus();
        } else say(explain(err, 'signing in', false), 'error');
      }
    });
  }

  async function signUp() {
    const { email, name } = authInputs();
    if (!email) { say('Enter an email for the new account.', 'warn'); $('#auth-email').focus(); return; }
    if (!name) { say('Enter your name to create an account.', 'warn'); $('#auth-name').focus(); return; }
    await busy($('#signup-btn'), async () => {
      try {
        const user = await api('POST', '/users', { name, email });
        setUser(user, true);
        say(`Welcome, ${user.name}! Your account is ready.`, 'ok');
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          say(`An account with ${email} already exists — choose “Sign in”.`, 'warn');
        } else if (err instanceof ApiError && err.status === 400) {
          say(`That account cannot be created: ${err.message}${detailText(err.body) ? ` (${detailText(err.body)})` : ''}.`, 'error');
        } else say(explain(err, 'creating your account', true), 'error');
      }
    });
  }

  function signOut() {
    const was = state.user;
    setUser(null);
    if (was) say(`Signed out ${was.email}.`, 'info');
  }

  // The remembered account, checked against this server (its data may be new).
  async function restoreUser() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(USER_KEY) || 'null'); } catch (_) { saved = null; }
    if (!saved || !saved.email) { setUser(null); return; }
    setUser(saved, true);
    try {
      const fresh = await api('GET', `/users/${enc(saved.email)}`);
      if (fresh.id !== saved.id || fresh.name !== saved.name) setUser(fresh, true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        setUser(null);
        $('#auth-email').value = saved.email;
        $('#auth-name').value = saved.name || '';
        say(`This server has no account for ${saved.email} (its data may be new). Create it again to shop.`, 'warn');
      }
      // unreachable or storage down: keep the remembered account; the heartbeat says the rest
    }
  }

  // ---- Cart ---------------------------------------------------------------

  async function loadCart() {
    if (!state.user) return;
    try {
      state.cart = await api('GET', `/shop/cart/${state.user.id}`);
      renderCart();
    } catch (err) {
      say(explain(err, 'loading your cart', false), 'error');
    }
  }

  async function addToCart(p, qtyInput, button) {
    if (!state.user) {
      say('Sign in or create an account first, then add products to your cart.', 'warn');
      $('#auth-email').focus();
      return;
    }
    const quantity = Number(qtyInput.value);
    if (!Number.isInteger(quantity) || quantity < 1) {
      say('The quantity must be a whole number of at least 1.', 'warn');
      qtyInput.focus();
      return;
    }
    await busy(button, async () => {
      try {
        state.cart = await api('POST', `/shop/cart/${state.user.id}`, { productId: p.id, quantity });
        renderCart();
        say(`Added ${quantity} × ${p.name} to your cart.`, 'ok');
        qtyInput.value = 1;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) say(stockMessage({ ...stockProblem(err.body), productId: p.id }), 'error');
        else if (err instanceof ApiError && err.status === 404) {
          say(`${p.name} or your account no longer exists on the server (${detailText(err.body) || err.message}).`, 'error');
          refreshCatalog();
        } else say(explain(err, `adding ${p.name} to your cart`, true), 'error');
      }
    });
  }

  async function removeFromCart(item, button) {
    await busy(button, async () => {
      try {
        state.cart = await api('DELETE', `/shop/cart/${state.user.id}/item/${item.productId}`);
        renderCart();
        say(`Removed ${item.name} from your cart.`, 'info');
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) loadCart();
        else say(explain(err, `removing ${item.name} from your cart`, true), 'error');
      }
    });
  }

  function renderCart() {
    const list = $('#cart-items');
    const cart = state.cart;
    const items = (cart && cart.items) || [];
    list.replaceChildren(...items.map((item) => el('li', {
      class: 'cart-item', dataset: { testid: 'cart-item', productId: item.productId },
    },
    el('span', { class: 'ci-name', 'data-testid': 'cart-item-name', text: item.name }),
    el('span', { class: 'ci-qty muted', 'data-testid': 'cart-item-qty', text: `${item.quantity} × ${money(item.price)}` }),
    el('span', { class: 'ci-sub', text: money(item.subtotal) }),
    el('button', {
      type: 'button', class: 'icon-btn', 'data-testid': 'cart-remove', 'aria-label': `Remove ${item.name}`, title: 'Remove',
      text: '×', onclick: (e) => removeFromCart(item, e.currentTarget),
    }))));
    const count = items.reduce((n, i) => n + i.quantity, 0);
    $('#cart-count').textContent = String(count);
    $('#cart-count').hidden = count === 0;
    $('#cart-total').textContent = money(cart ? cart.total : 0);
    $('#cart-empty').textContent = state.user ? 'Your cart is empty.' : 'Sign in to fill a cart.';
    $('#cart-empty').hidden = items.length > 0;
    $('#checkout-btn').disabled = items.length === 0;
  }

  async function checkout() {
    if (!state.user) return;
    const button = $('#checkout-btn');
    await busy(button, async () => {
      try {
        const order = await api('POST', `/cart/${state.user.id}/checkout`);
        say(`Order #${order.id} placed: ${money(order.total)} for ${order.products.reduce((n, l) => n + l.quantity, 0)} item(s), status ${order.status}.`, 'ok');
        state.cart = { userId: state.user.id, items: [], total: 0 };
        renderCart();
        state.orders = [order, ...state.orders.filter((o) => o.id !== order.id)];
        renderOrders();
        loadOrders();
        loadCart();
        refreshCatalog(); // stock went down
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          let problem = stockProblem(err.body);
          if (problem.productId === null) problem = (await findShortProduct()) || problem;
          if (problem.productId === null) {
            say(`Not enough stock for one of the products in your cart${detailText(err.body) ? ` (${detailText(err.body)})` : ''}. Nothing was ordered and nothing was charged.`, 'error');
          } else say(stockMessage(problem), 'error');
          refreshCatalog();
        } else if (err instanceof ApiError && err.status === 400 && /empty/i.test(`${err.message} ${detailText(err.body)}`)) {
          say('Your cart is empty: add a product before checking out.', 'warn');
          loadCart();
        } else {
          say(explain(err, 'placing your order', true), err instanceof ApiError && err.status === 500 ? 'warn' : 'error');
          if (!(err instanceof NetworkError && !err.timedOut)) {
            // 500 outcome unknown, 503, a timeout: show what the server holds now
            loadOrders();
            loadCart();
          }
        }
      }
    });
  }

  // ---- Orders -------------------------------------------------------------

  async function loadOrders() {
    if (!state.user) return;
    try {
      const list = await api('GET', `/orders/${state.user.id}`);
      state.orders = [...list].sort((a, b) => b.id - a.id);
      renderOrders();
    } catch (err) {
      say(explain(err, 'loading your order history', false), 'error');
    }
  }

  async function cancelOrder(order, button) {
    await busy(button, async () => {
      try {
        const o = await api('PUT', `/orders/${order.id}`, { status: 'cancelled' });
        say(`Order #${o.id} is ${o.status}.`, 'info');
        loadOrders();
        refreshCatalog();
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          say(`Order #${order.id} can no longer be cancelled${detailText(err.body) ? ` (${detailText(err.body)})` : ''}.`, 'warn');
          loadOrders();
        } else say(explain(err, `cancelling order #${order.id}`, true), 'error');
      }
    });
  }

  function renderOrders() {
    const list = $('#order-list');
    list.replaceChildren(...state.orders.map((o) => el('li', {
      class: 'order', id: `order-${o.id}`, dataset: { testid: 'order', orderId: o.id, status: o.status },
    },
    el('div', { class: 'order-head' },
      el('b', { class: 'order-id', 'data-testid': 'order-id', text: `#${o.id}` }),
      el('span', { class: `badge status-${o.status}`, 'data-testid': 'order-status', text: o.status }),
      el('span', { class: 'order-total', 'data-testid': 'order-total', text: money(o.total) })),
    el('div', { class: 'order-date muted', text: when(o.createdAt) }),
    el('ul', { class: 'order-lines' }, ...(o.products || []).map((l) => el('li', {
      text: `${l.quantity} × ${productName(l.productId)} @ ${money(l.price)}`,
    }))),
    o.status === 'pending' ? el('button', {
      type: 'button', class: 'btn small ghost', 'data-testid': 'order-cancel', text: 'Cancel order',
      onclick: (e) => cancelOrder(o, e.currentTarget),
    }) : null)));
    $('#orders-empty').textContent = state.user ? 'No orders yet.' : 'Sign in to see your orders.';
    $('#orders-empty').hidden = state.orders.length > 0;
  }

  // ---- Redundancy panel ---------------------------------------------------

  // GET a status route; null when it answers 404 (not configured here). A 404
  // is asked again only every few seconds: a topology changes with a restart.
  async function status(path) {
    const p = state.panels[path] || (state.panels[path] = { absent: null, nextCheck: 0 });
    if (p.absent && Date.now() < p.nextCheck) return null;
    try {
      const data = await api('GET', path, undefined, POLL_TIMEOUT_MS);
      p.absent = false;
      return data;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        p.absent = true;
        p.nextCheck = Date.now() + ABSENT_RECHECK_MS;
        return null;
      }
      throw err;
    }
  }

  function badge(node, text, tone) {
    node.textContent = text;
    node.className = `badge ${tone}`;
    node.dataset.state = text;
  }

  // How bad a redundancy state is, worst last; the header shows the worst one.
  const LEVELS = ['ok', 'lagging', 'retrying', 'degraded', 'failed'];
  const LEVEL_TONE = { ok: 'ok', lagging: 'warn', retrying: 'warn', degraded: 'warn', failed: 'bad' };
  const summary = (level, text) => ({ level, text });

  // Values in words and units.
  const none = (v) => v === null || v === undefined || v === '';
  const plural = (n, one, many = `${one}s`) => `${n} ${Number(n) === 1 ? one : many}`;
  const count = (one, many) => (v) => (none(v) ? '–' : plural(v, one, many));
  const secs = (v) => (none(v) ? '–' : `${Number(v).toFixed(3)} s`);
  const millis = (v) => (none(v) ? '–' : `${Number(v) < 10 ? Number(v).toFixed(1) : Math.round(Number(v))} ms`);
  const change = (v) => (none(v) ? '–' : `change ${v}`);
  const since = (v) => (none(v) ? 'never' : ago(v));
  const words = (yes, no) => (v) => (v ? yes : no);

  // What each field of a status means: [key, label, format]. A field the
  // server adds later still shows, under its own name.
  const ASYNC_FIELDS = [
    ['lagChanges', 'Secondary behind by', count('change')],
    ['lagSeconds', 'Oldest missing change', (v) => (none(v) ? '–' : Number(v) === 0 ? 'none' : `${secs(v)} old`)],
    ['primarySeq', 'Primary at', change],
    ['secondarySeq', 'Secondary at', change],
    ['sentThrough', 'Sent through', change],
    ['delayMs', 'WAN delay (each way)', millis],
    ['inTransit', 'In transit', count('change')],
    ['lastApplyLagSeconds', 'Last change reached it in', secs],
    ['lastAppliedAt', 'Last applied', since],
    ['batchesSent', 'Batches sent', count('batch', 'batches')],
    ['acks', 'Acknowledgements', count('ack')],
    ['staleAcks', 'Old acknowledgements ignored', count('ack')],
    ['batchesApplied', 'Batches applied', count('batch', 'batches')],
    ['changesApplied', 'Changes applied', count('change')],
    ['duplicatesSkipped', 'Duplicates skipped', count('change')],
    ['applyErrors', 'Batches it could not apply', count('batch', 'batches')],
    ['dropped', 'Messages lost on the link', count('message')],
    ['failures', 'Messages that could not be sent', count('message')],
    ['linkOverflow', 'Messages refused (link full)', count('message')],
    ['linkPending', 'Messages waiting on the link', count('message')],
    ['timeouts', 'Timeouts (back to the last ack)', count('time')],
    ['gapResends', 'Gaps resent', count('time')],
    ['resends', 'Went back and resent', count('time')],
    ['rtoMs', 'Resends after', millis],
    ['snapshotsSent', 'Whole-database copies sent', count('copy', 'copies')],
    ['prunedThrough', 'Outbox kept after', change],
    ['outbox', 'Outbox', (v) => (v === 'off' ? 'off: whole-database copies' : 'on')],
    ['fenced', 'Fenced by a failover', words('yes', 'no')],
    ['fencedHeadSeq', 'Fenced at', change],
    ['stuck', 'Stuck', (v) => (v ? v : 'no')],
    ['lostChanges', 'Changes the promoted copy lacks', (v) => (v ? `${v.count} (changes ${v.first} to ${v.last})` : 'none')],
    ['secondaryProcess', 'Secondary process', proc],
  ];
  // A node's own process (serve starts it): pid, address, restarts.
  function proc(p) {
    if (!p) return '–';
    const where = p.pid ? `pid ${p.pid}${p.url ? ` at ${p.url}` : ''}` : p.url ? `at ${p.url}` : 'not running';
    return `${where} · ${plural(p.restarts || 0, 'restart')}${p.lastError ? ` · last error: ${p.lastError}` : ''}`;
  }
  const SYNC_FIELDS = [
    ['online', 'Link to central', words('online', 'offline')],
    ['rows', 'Changes', (r) => (r ? `${r.pending} waiting · ${r.synced} synced · ${r.failed} failed` : '–')],
    ['oldestPendingSeconds', 'Oldest waiting change', (v) => (none(v) ? '–' : Number(v) === 0 ? 'none' : `${secs(v)} old`)],
    ['intervalMs', 'Syncs every', millis],
    ['running', 'Sync job', words('running', 'stopped')],
    ['lastRunAt', 'Last run', since],
    ['lastRunMs', 'Last run took', millis],
    ['lastPushAt', 'Last push', since],
    ['lastSyncAt', 'Last accepted push', since],
    ['runs', 'Runs', count('run')],
    ['pushes', 'Pushes', count('push', 'pushes')],
    ['failedPushes', 'Failed pushes', count('push', 'pushes')],
    ['rowsPushed', 'Rows pushed', count('row')],
    ['rowsSynced', 'Rows synced', count('row')],
    ['rowsRetried', 'Rows retried', count('row')],
    ['rowsFailed', 'Rows given up', count('row')],
    ['retryBudget', 'Tries per row', count('try', 'tries')],
    ['retriesMax', 'Most tries of one row', count('try', 'tries')],
    ['syncedTwice', 'Rows synced twice', count('row')],
    ['centralCheck', 'Central holds', (c) => (c ? `${c.matching} of ${c.keys} rows${c.missing ? `, ${c.missing} missing` : ''}${c.differs ? `, ${c.differs} different` : ''} (checked ${ago(c.at)})` : 'not checked yet')],
  ];
  SYNC_FIELDS.push(['centralProcess', 'Central process', proc]);
  const SKIP = ['topology', 'state', 'node', 'central', 'primary', 'secondary', 'lastError', 'queueError', 'tables', 'trace'];

  function fillFields(dl, data, fields) {
    const rows = [];
    const known = new Set(fields.map(([k]) => k));
    for (const [k, name, fmt] of fields) {
      if (!(k in data)) continue;
      rows.push(el('dt', { text: name }), el('dd', { 'data-key': k, text: fmt(data[k]) }));
    }
    for (const [k, v] of Object.entries(data)) {
      if (known.has(k) || SKIP.includes(k)) continue;
      rows.push(el('dt', { text: label(k) }), el('dd', { 'data-key': k, text: scalar(k, v) }));
    }
    dl.replaceChildren(...rows);
  }

  function showError(sel, text) {
    const e = $(sel);
    e.textContent = text || '';
    e.hidden = !text;
  }

  async function pollHeartbeat() {
    try {
      const h = await api('GET', '/heartbeat', undefined, POLL_TIMEOUT_MS);
      const wasDown = state.reachable === false;
      state.reachable = true;
      state.heartbeat = h;
      if (wasDown) {
        say('The server answers again.', 'ok');
        refreshCatalog();
        if (state.user) { loadCart(); loadOrders(); }
      }
    } catch (err) {
      state.reachable = false;
      state.heartbeat = { error: err instanceof NetworkError ? 'server unreachable' : `heartbeat: ${err.message} (${err.status})` };
    }
  }

  // The header: the server, and the worst redundancy state in words and colour.
  function renderHeader(worst) {
    const hb = $('#heartbeat');
    const h = state.heartbeat || {};
    if (h.error) {
      hb.dataset.state = 'down';
      hb.dataset.level = 'down';
      $('#heartbeat-text').textContent = h.error;
      return;
    }
    const serverOk = h.status === 'ok';
    const level = worst ? worst.level : 'ok';
    hb.dataset.level = level;
    hb.dataset.state = !serverOk ? 'warn' : LEVEL_TONE[level];
    hb.title = `GET /heartbeat: up ${duration(h.uptimeSeconds)}`;
    const what = worst ? worst.text : 'no redundancy';
    // the topology by what it is ("offline" alone would read as a lost link)
    const topo = { offline: 'offline-first' }[h.topology] || h.topology || '?';
    $('#heartbeat-text').textContent =
      `${h.node || 'server'} · ${topo} · ${serverOk ? what : `status ${h.status}`}`;
  }

  const POLICY_WORDS = {
    strict: 'strict: refuses writes while a copy cannot write',
    degrade: 'degrade: keeps writing on the copy that can',
  };

  async function pollMirror() {
    const panel = $('#mirror-panel');
    let m;
    try { m = await status('/mirror/status'); } catch (err) {
      if (err instanceof NetworkError) return state.last.mirror; // the last picture; the header says unreachable
      panel.hidden = false;
      badge($('#mirror-state'), 'unavailable', 'bad');
      showError('#mirror-error', explain(err, 'reading the mirror status', false));
      return summary('failed', 'mirror status unavailable');
    }
    panel.hidden = !m;
    if (!m) return null;
    const st = m.state || '?';
    const tone = st === 'in-sync' ? 'ok' : st === 'failed' ? 'bad' : 'warn';
    badge($('#mirror-state'), st, tone);
    panel.dataset.state = st;
    $('#mirror-lead').textContent = m.lead || '–';
    $('#mirror-policy').textContent = POLICY_WORDS[m.policy] || m.policy || '–';
    $('#mirror-behind').textContent = m.behind || 'none';
    $('#mirror-changes').textContent = count('change')(m.changesBehind ?? null);
    $('#mirror-seq').textContent = `primary at ${change(m.seqPrimary)} · mirror at ${change(m.seqMirror)}`;
    $('#mirror-resyncs').textContent = count('resync')(m.resyncs ?? null);
    $('#mirror-since').textContent = m.since ? ago(m.since) : '–';
    const healed = st === 'in-sync';
    showError('#mirror-error', m.lastError ? `${healed ? 'Last error (healed since)' : 'Last error'}: ${m.lastError}` : '');
    $('#mirror-error').classList.toggle('healed', healed);
    if (st === 'failed') return summary('failed', 'mirror failed: writes refused');
    if (st === 'degraded') {
      return summary('degraded', `mirror degraded: ${m.behind || 'a copy'} ${plural(m.changesBehind || 0, 'change')} behind`);
    }
    return summary('ok', 'mirror in sync');
  }

  // The core says "retrying" only in the instant it goes back to resend; the
  // page calls it retrying while messages to the secondary were lost, failed
  // or timed out lately (within three resend periods) and it is behind.
  const linkTrouble = { count: null, at: 0 };
  function asyncSummary(d) {
    const losses = ['dropped', 'failures', 'timeouts', 'gapResends'].reduce((n, k) => n + (Number(d[k]) || 0), 0);
    if (linkTrouble.count !== null && losses > linkTrouble.count) linkTrouble.at = Date.now();
    linkTrouble.count = losses;
    const recent = Date.now() - linkTrouble.at < Math.max(10000, 3 * (Number(d.rtoMs) || 0));
    if (d.state === 'stuck') return summary('failed', `replication stuck${d.stuck ? `: ${d.stuck}` : ''}`);
    if (d.fenced) return summary('degraded', 'fenced: a failover promoted the secondary');
    if (d.state === 'retrying' || (recent && d.lagChanges > 0)) {
      return summary('retrying', `replication retrying: secondary ${plural(d.lagChanges || 0, 'change')} behind`);
    }
    if (d.lagChanges > 0) return summary('lagging', `secondary lagging: ${plural(d.lagChanges, 'change')} behind`);
    return summary('ok', 'secondary in sync');
  }

  function syncSummary(d) {
    const rows = d.rows || {};
    if (rows.failed > 0) return summary('failed', `${plural(rows.failed, 'change')} failed to sync`);
    if (d.online === false) return summary('degraded', `offline: ${plural(rows.pending || 0, 'change')} waiting`);
    if (rows.pending > 0) return summary('lagging', `${plural(rows.pending, 'change')} waiting to sync`);
    return summary('ok', 'central in sync');
  }

  // A cluster's leader and replicas: one line each.
  function renderCluster(dl, d) {
    const rows = [el('dt', { text: 'Leader' }),
      el('dd', { 'data-key': 'leader', text: `${d.leader.node} at ${change(d.leader.seq)}` })];
    for (const r of d.replicas || []) {
      const lag = none(r.lagChanges) ? '' : ` · ${plural(r.lagChanges, 'change')} behind (${secs(r.lagSeconds)})`;
      rows.push(el('dt', { text: r.node }),
        el('dd', { 'data-key': r.node, dataset: { state: r.state } },
          el('span', { class: `badge ${r.state === 'up' ? 'ok' : r.state === 'down' ? 'bad' : 'warn'}`, text: r.state }),
          ` at ${change(r.position)}${lag} · ${plural(r.restarts || 0, 'restart')}`));
    }
    dl.replaceChildren(...rows);
  }

  function clusterSummary(d) {
    const reps = d.replicas || [];
    const down = reps.filter((r) => r.state === 'down').map((r) => r.node);
    const catching = reps.filter((r) => r.state === 'catching-up').map((r) => r.node);
    const lag = reps.filter((r) => r.lagChanges > 0).map((r) => r.node);
    if (down.length) return summary('degraded', `${down.join(', ')} down`);
    const most = Math.max(0, ...reps.map((r) => Number(r.lagChanges) || 0));
    if (catching.length) return summary('lagging', `${catching.join(', ')} catching up`);
    if (lag.length) return summary('lagging', `${lag.join(', ')} lagging: ${plural(most, 'change')} behind`);
    return summary('ok', `${plural(reps.length, 'replica')} in sync`);
  }

  async function pollReplication() {
    const panel = $('#replication-panel');
    let d;
    try { d = await status('/replication/status'); } catch (err) {
      if (err instanceof NetworkError) return state.last.replication;
      panel.hidden = false;
      badge($('#replication-state'), 'unavailable', 'bad');
      showError('#replication-error', explain(err, 'reading /replication/status', false));
      return summary('failed', 'replication status unavailable');
    }
    panel.hidden = !d;
    if (!d) return null;
    const cluster = d.topology === 'cluster';
    $('#replication-title').textContent = cluster ? 'Cluster replicas' : 'Async replication';
    const s = cluster ? clusterSummary(d) : asyncSummary(d);
    // the page's level when something is wrong (the core's state is an instant)
    const word = cluster || s.level !== 'ok' ? (d.state === 'stuck' ? 'stuck' : s.level) : d.state || s.level;
    badge($('#replication-state'), word, LEVEL_TONE[s.level]);
    panel.dataset.state = s.level;
    if (cluster) renderCluster($('#replication-fields'), d);
    else fillFields($('#replication-fields'), d, ASYNC_FIELDS);
    showError('#replication-error', d.lastError ? `${s.level === 'ok' ? 'Last error (recovered since)' : 'Last error'}: ${d.lastError}` : '');
    return s;
  }

  async function pollSync() {
    const panel = $('#sync-panel');
    let d;
    try { d = await status('/sync/status'); } catch (err) {
      if (err instanceof NetworkError) return state.last.sync;
      panel.hidden = false;
      badge($('#sync-state'), 'unavailable', 'bad');
      showError('#sync-error', explain(err, 'reading /sync/status', false));
      return summary('failed', 'sync status unavailable');
    }
    panel.hidden = !d;
    if (!d) return null;
    const s = syncSummary(d);
    badge($('#sync-state'), d.online === false ? 'offline' : s.level === 'ok' ? 'synced' : s.level, LEVEL_TONE[s.level]);
    panel.dataset.state = s.level;
    fillFields($('#sync-fields'), d, SYNC_FIELDS);
    showError('#sync-error', d.lastError || d.queueError ? `Last error: ${d.lastError || d.queueError}` : '');
    return s;
  }

  // ---- Fault panel ----------------------------------------------------------

  // What a fault point does, in words, from its name (the catalog's patterns).
  function faultEffect(name) {
    const p = name.split('/');
    const n = p[1];
    if (p[0] === 'disk') {
      return {
        read: `reads of ${n}'s database fail`,
        write: `writes to ${n}'s database fail`,
        fsync: `${n}'s fsyncs fail: commits cannot be made durable`,
        full: `${n}'s disk is full`,
        slow: `${n}'s disk answers slowly`,
      }[p[2]] || `${n}'s disk misbehaves (${p[2]})`;
    }
    if (p[0] === 'net') {
      return {
        drop: `messages from ${n} to ${p[2]} are lost`,
        delay: `messages from ${n} to ${p[2]} arrive late`,
        duplicate: `messages from ${n} to ${p[2]} arrive twice`,
        reorder: `messages from ${n} to ${p[2]} overtake each other`,
      }[p[3]] || `the link from ${n} to ${p[2]} misbehaves (${p[3]})`;
    }
    if (p[0] === 'crash') return `${n} dies (killed) at ${p.slice(2).join('/')}`;
    return name;
  }
  // Only a disk read, write or fsync fails with an errno one can choose.
  const takesErrno = (name) => /^disk\/[^/]+\/(read|write|fsync|full)$/.test(name);

  async function pollFaults() {
    const panel = $('#faults-panel');
    const p = state.panels['/faults'] || (state.panels['/faults'] = { absent: null, nextCheck: 0 });
    let data;
    try { data = await status('/faults'); } catch (err) {
      if (!(err instanceof NetworkError) && p.absent === null) panel.hidden = true;
      return;
    }
    panel.hidden = !data;
    if (!data) return;
    renderFaults(data.points || []);
    const hint = $('#fault-pid');
    hint.hidden = !data.pid;
    const example = (data.points || []).find((f) => /\/write$/.test(f.name)) || (data.points || [])[0];
    if (data.pid && example) hint.textContent = `From a shell: fiu-ctrl -c "enable name=${example.name},failinfo=5" ${data.pid}`;
    else hint.hidden = true;
  }

  function faultInput(f) {
    const slow = f.errno === undefined && f.delayMs !== undefined;
    if (slow) {
      return el('input', { type: 'number', class: 'delay', min: 1, max: 60000, value: f.delayMs,
        'data-testid': 'fault-delay', 'aria-label': `delay in ms for ${f.name}` });
    }
    if (!takesErrno(f.name)) return null;
    const input = el('select', { class: 'errno', 'data-testid': 'fault-errno', 'aria-label': `errno for ${f.name}` },
      ...ERRNOS.map((e) => el('option', { value: e, text: e })));
    const dflt = f.errno || 'EIO';
    if (!ERRNOS.includes(dflt)) input.append(el('option', { value: dflt, text: dflt }));
    input.value = dflt;
    return input;
  }

  function renderFaults(points) {
    const body = $('#fault-list');
    const key = points.map((f) => f.name).join('\n');
    if (key !== state.faultRowsKey) {
      state.faultRowsKey = key;
      body.replaceChildren(...points.map((f) => {
        const input = faultInput(f);
        const row = el('tr', { class: 'fault', dataset: { testid: 'fault-point', name: f.name } },
          el('td', {}, el('code', { text: f.name }),
            el('div', { class: 'muted small', 'data-testid': 'fault-effect', text: faultEffect(f.name) })),
          el('td', {}, el('span', { class: 'badge', 'data-testid': 'fault-state' })),
          el('td', {}, input || el('span', { class: 'muted', text: '—' }), input && input.tagName === 'INPUT' ? ' ms' : null),
          el('td', {}, el('button', { type: 'button', class: 'btn small', 'data-testid': 'fault-toggle' })));
        $('button', row).addEventListener('click', (e) => toggleFault(row, e.currentTarget));
        return row;
      }));
    }
    let active = 0;
    for (const f of points) {
      const row = body.querySelector(`tr[data-name="${CSS.escape(f.name)}"]`);
      if (!row) continue;
      if (f.enabled) active++;
      row.dataset.enabled = f.enabled ? 'true' : 'false';
      row.classList.toggle('on', !!f.enabled);
      badge($('[data-testid=fault-state]', row), f.enabled ? 'enabled' : 'off', f.enabled ? 'bad' : 'neutral');
      const input = $('select, input', row);
      if (input && f.enabled) {
        if (input.tagName === 'SELECT' && f.errno) input.value = f.errno;
        if (input.tagName === 'INPUT' && f.delayMs !== undefined) input.value = f.delayMs;
      }
      if (input) input.disabled = !!f.enabled; // the value in force shows while enabled
      const b = $('[data-testid=fault-toggle]', row);
      if (!b.dataset.busy) {
        b.textContent = f.enabled ? 'Disable' : 'Enable';
        b.className = `btn small ${f.enabled ? '' : 'danger'}`;
      }
    }
    $('#faults-active').textContent = `${active} active`;
    $('#faults-active').hidden = active === 0;
    applyFaultFilter();
  }

  function applyFaultFilter() {
    const q = $('#fault-filter').value.trim().toLowerCase();
    for (const row of $('#fault-list').rows) row.hidden = !!q && !row.dataset.name.toLowerCase().includes(q);
  }

  async function toggleFault(row, button) {
    const name = row.dataset.name;
    const action = row.dataset.enabled === 'true' ? 'disable' : 'enable';
    const input = $('select, input', row);
    const body = { name, action };
    let how = faultEffect(name);
    if (input && input.tagName === 'SELECT') {
      body.errno = input.value || 'EIO';
      how += ` (${body.errno})`;
    } else if (input) {
      body.delayMs = Math.max(1, Math.round(Number(input.value) || 1));
      how += ` (+${body.delayMs} ms)`;
    }
    button.dataset.busy = '1';
    await busy(button, async () => {
      try {
        await api('POST', '/faults', body);
        say(action === 'enable' ? `Fault ${name} on: ${how}.` : `Fault ${name} off.`, action === 'enable' ? 'warn' : 'info');
      } catch (err) {
        say(explain(err, `${action === 'enable' ? 'enabling' : 'disabling'} ${name}`, false), 'error');
      }
    });
    delete button.dataset.busy;
    await pollFaults();
    pollRedundancy();
  }

  async function pollRedundancy() {
    const [mirror, replication, sync] = await Promise.all([pollMirror(), pollReplication(), pollSync()]);
    state.last = { mirror, replication, sync };
    const known = ['/mirror/status', '/replication/status', '/sync/status'].map((p) => state.panels[p]);
    $('#redundancy-none').hidden = !known.every((p) => p && p.absent === true);
    let worst = null;
    for (const s of [mirror, replication, sync]) {
      if (s && (!worst || LEVELS.indexOf(s.level) > LEVELS.indexOf(worst.level))) worst = s;
    }
    return worst;
  }

  let polling = false;
  async function tick() {
    if (polling) return;
    polling = true;
    try {
      const [, worst] = await Promise.all([pollHeartbeat(), pollRedundancy(), pollFaults()]);
      renderHeader(worst);
      $('.platform').classList.toggle('stale', !state.reachable); // the last picture, greyed
      $('#platform-updated').textContent = state.reachable
        ? `updated ${new Date().toLocaleTimeString()}`
        : `server unreachable — last try ${new Date().toLocaleTimeString()}`;
    } finally {
      polling = false;
      setTimeout(tick, document.hidden ? POLL_MS * 5 : POLL_MS);
    }
  }

  // ---- Plumbing -----------------------------------------------------------

  // Runs fn with the button disabled (no double checkout on a double click).
  async function busy(button, fn) {
    if (button.dataset.running) return;
    button.disabled = true;
    button.dataset.running = '1';
    button.setAttribute('aria-busy', 'true');
    try { await fn(); } finally {
      delete button.dataset.running;
      button.removeAttribute('aria-busy');
      button.disabled = false;
      if (button.id === 'checkout-btn') renderCart(); // enabled only with items
    }
  }

  function debounce(fn, ms) {
    let t = 0;
    return () => { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  function init() {
    $('#auth-form').addEventListener('submit', signIn);
    $('#signup-btn').addEventListener('click', signUp);
    $('#signout-btn').addEventListener('click', signOut);
    $('#checkout-btn').addEventListener('click', checkout);
    $('#message-close').addEventListener('click', () => { $('#message').hidden = true; });
    $('#filters').addEventListener('submit', (e) => { e.preventDefault(); loadProducts(); });
    $('#search').addEventListener('input', debounce(loadProducts, 250));
    $('#category').addEventListener('change', loadProducts);
    $('#in-stock').addEventListener('change', loadProducts);
    $('#fault-filter').addEventListener('input', applyFaultFilter);
    renderCart();
    renderOrders();
    refreshCatalog();
    restoreUser().finally(() => { document.body.dataset.ready = 'true'; });
    tick();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
