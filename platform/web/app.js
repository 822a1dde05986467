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
      state.cart = await api('GET', `/cart/${state.user.id}`);
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
        state.cart = await api('POST', `/cart/${state.user.id}`, { productId: p.id, quantity });
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
        state.cart = await api('DELETE', `/cart/${state.user.id}/item/${item.productId}`);
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
  const TONES = {
    'in-sync': 'ok', ok: 'ok', synced: 'ok', online: 'ok', replicating: 'ok', healthy: 'ok', 'caught-up': 'ok',
    degraded: 'warn', lagging: 'warn', behind: 'warn', resyncing: 'warn', pending: 'warn', offline: 'warn', stale: 'warn',
    failed: 'bad', down: 'bad', error: 'bad', unreachable: 'bad',
  };
  const tone = (s) => TONES[String(s).toLowerCase()] || 'neutral';

  async function pollHeartbeat() {
    const hb = $('#heartbeat');
    try {
      const h = await api('GET', '/heartbeat', undefined, POLL_TIMEOUT_MS);
      const wasDown = state.reachable === false;
      state.reachable = true;
      hb.dataset.state = h.status === 'ok' ? 'ok' : 'warn';
      $('#heartbeat-text').textContent =
        `${h.node || 'server'} · ${h.status || '?'}${h.topology ? ` · ${h.topology}` : ''} · up ${duration(h.uptimeSeconds)}`;
      if (wasDown) {
        say('The server answers again.', 'ok');
        refreshCatalog();
        if (state.user) { loadCart(); loadOrders(); }
      }
    } catch (err) {
      state.reachable = false;
      hb.dataset.state = err instanceof NetworkError ? 'down' : 'warn';
      $('#heartbeat-text').textContent = err instanceof NetworkError ? 'server unreachable' : `heartbeat: ${err.message} (${err.status})`;
    }
  }

  async function pollMirror() {
    const panel = $('#mirror-panel');
    let m;
    try { m = await status('/mirror/status'); } catch (err) {
      if (err instanceof NetworkError) return; // keep the last picture; the heartbeat says unreachable
      panel.hidden = false;
      badge($('#mirror-state'), 'unavailable', 'bad');
      const e = $('#mirror-error');
      e.textContent = explain(err, 'reading the mirror status', false);
      e.hidden = false;
      return;
    }
    panel.hidden = !m;
    if (!m) return;
    badge($('#mirror-state'), m.state || '?', tone(m.state));
    panel.dataset.state = m.state || '';
    $('#mirror-lead').textContent = m.lead || '–';
    $('#mirror-policy').textContent = m.policy || '–';
    $('#mirror-behind').textContent = m.behind || 'none';
    $('#mirror-changes').textContent = m.changesBehind ?? '–';
    $('#mirror-seq').textContent = `primary ${m.seqPrimary ?? '–'} · mirror ${m.seqMirror ?? '–'}`;
    $('#mirror-resyncs').textContent = m.resyncs ?? '–';
    $('#mirror-since').textContent = m.since ? ago(m.since) : '–';
    const e = $('#mirror-error');
    const healed = m.state === 'in-sync';
    e.textContent = m.lastError ? `${healed ? 'Last error (healed since)' : 'Last error'}: ${m.lastError}` : '';
    e.classList.toggle('healed', healed);
    e.hidden = !m.lastError;
  }

  function fillFields(dl, data, skip) {
    const rows = [];
    for (const [k, v] of Object.entries(data)) {
      if (skip.includes(k)) continue;
      rows.push(el('dt', { text: label(k) }), el('dd', { 'data-key': k, text: scalar(k, v) }));
    }
    dl.replaceChildren(...rows);
  }

  async function pollGeneric(path, panelSel, badgeSel, fieldsSel) {
    const panel = $(panelSel);
    let data;
    try { data = await status(path); } catch (err) {
      if (err instanceof NetworkError) return;
      panel.hidden = false;
      badge($(badgeSel), 'unavailable', 'bad');
      $(fieldsSel).replaceChildren(el('dd', { class: 'last-error', text: explain(err, `reading ${path}`, false) }));
      return;
    }
    panel.hidden = !data;
    if (!data) return;
    let st = data.state ?? data.status;
    if (st === undefined && typeof data.online === 'boolean') st = data.online ? 'online' : 'offline';
    badge($(badgeSel), st === undefined ? 'ok' : String(st), tone(st === undefined ? 'ok' : st));
    fillFields($(fieldsSel), data, ['state', 'topology']);
  }

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

  function renderFaults(points) {
    const body = $('#fault-list');
    const key = points.map((f) => f.name).join('\n');
    if (key !== state.faultRowsKey) {
      state.faultRowsKey = key;
      body.replaceChildren(...points.map((f) => {
        // A slow point takes a delay in ms; every other point an errno.
        const slow = f.errno === undefined && f.delayMs !== undefined;
        let input;
        if (slow) {
          input = el('input', { type: 'number', class: 'delay', min: 1, max: 60000, value: f.delayMs,
            'data-testid': 'fault-delay', 'aria-label': `delay in ms for ${f.name}` });
        } else {
          input = el('select', { class: 'errno', 'data-testid': 'fault-errno', 'aria-label': `errno for ${f.name}` },
            ...ERRNOS.map((e) => el('option', { value: e, text: e })));
          const dflt = f.errno || 'EIO';
          if (!ERRNOS.includes(dflt)) input.append(el('option', { value: dflt, text: dflt }));
          input.value = dflt;
        }
        const row = el('tr', { class: 'fault', dataset: { testid: 'fault-point', name: f.name } },
          el('td', {}, el('code', { text: f.name }), f.description ? el('div', { class: 'muted small', text: f.description }) : null),
          el('td', {}, el('span', { class: 'badge', 'data-testid': 'fault-state' })),
          el('td', {}, input, slow ? ' ms' : null),
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
      if (f.enabled) {
        if (input.tagName === 'SELECT' && f.errno) input.value = f.errno;
        if (input.tagName === 'INPUT' && f.delayMs !== undefined) input.value = f.delayMs;
      }
      input.disabled = !!f.enabled; // the value in force shows while enabled
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
    let how;
    if (input.tagName === 'SELECT') {
      body.errno = input.value || 'EIO';
      how = body.errno;
    } else {
      body.delayMs = Math.max(1, Math.round(Number(input.value) || 1));
      how = `${body.delayMs} ms`;
    }
    button.dataset.busy = '1';
    await busy(button, async () => {
      try {
        await api('POST', '/faults', body);
        say(action === 'enable' ? `Fault ${name} enabled (${how}).` : `Fault ${name} disabled.`, action === 'enable' ? 'warn' : 'info');
      } catch (err) {
        say(explain(err, `${action === 'enable' ? 'enabling' : 'disabling'} ${name}`, false), 'error');
      }
    });
    delete button.dataset.busy;
    await pollFaults();
    pollRedundancy();
  }

  async function pollRedundancy() {
    await Promise.all([
      pollMirror(),
      pollGeneric('/replication/status', '#replication-panel', '#replication-state', '#replication-fields'),
      pollGeneric('/sync/status', '#sync-panel', '#sync-state', '#sync-fields'),
    ]);
    const known = ['/mirror/status', '/replication/status', '/sync/status'].map((p) => state.panels[p]);
    $('#redundancy-none').hidden = !known.every((p) => p && p.absent === true);
  }

  let polling = false;
  async function tick() {
    if (polling) return;
    polling = true;
    try {
      await Promise.all([pollHeartbeat(), pollRedundancy(), pollFaults()]);
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
