#!/usr/bin/env node
// mock_server.js — an in-memory stand-in for `faultdrill serve`, for working on
// platform/web/ without the C server. It follows /work/notes/api-shapes.md
// (routes, JSON shapes, error shapes, status codes) closely enough for the
// front end and its browser test (`node e2e.js --mock`); it is not the shop.
//
//   node tests/web/mock_server.js [--port 3002] [--web platform/web]
//        [--topology mirror|async|offline] [--allow-faults] [--no-seed]
//
// With --allow-faults, enabling disk/<node>/write or disk/<node>/full makes
// writes answer 503 (and the mirror state degrade); disk/primary/fsync makes
// them answer 500 "outcome unknown" after applying (as a commit whose sync
// failed may or may not survive). SIGTERM and SIGINT exit 0.
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const PORT = Number(opt('--port', '3002'));
const WEB = path.resolve(opt('--web', path.join(__dirname, '..', '..', 'platform', 'web')));
const TOPOLOGY = opt('--topology', 'mirror');
const ALLOW_FAULTS = args.includes('--allow-faults');
const SEED = !args.includes('--no-seed');
const started = Date.now();

// ---- Data (money in cents, as the platform keeps it) ---------------------
const db = { products: [], users: [], carts: new Map(), orders: [], next: { p: 1, u: 1, o: 1 } };
const mirror = { seqPrimary: 0, seqMirror: 0, resyncs: 0, since: new Date().toISOString(), lastError: '' };
// As serve's panel: disk/<node>/read|write|fsync|full|slow for the topology's nodes;
// slow points take delayMs, the others an errno.
const faultPoints = [];
for (const node of TOPOLOGY === 'mirror' ? ['primary', 'mirror'] : ['primary']) {
  for (const kind of ['read', 'write', 'fsync', 'full', 'slow']) {
    const f = { name: `disk/${node}/${kind}`, enabled: false };
    if (kind === 'slow') f.delayMs = 100; else f.errno = kind === 'full' ? 'ENOSPC' : 'EIO';
    faultPoints.push(f);
  }
}
const ERRNOS = ['EIO', 'ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'ENOMEM', 'EBADF', 'EFBIG', 'ENOENT',
  'ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'EHOSTUNREACH'];

function addProduct(name, description, category, cents, stock) {
  const p = { id: db.next.p++, name, description, category, cents, stock };
  db.products.push(p);
  return p;
}
if (SEED) {
  addProduct('Mug', 'Stoneware, 330 ml, survives the dishwasher.', 'kitchen', 1250, 10);
  addProduct('Teapot', 'Cast iron, one litre.', 'kitchen', 3490, 3);
  addProduct('Notebook', 'A5, dotted, 120 pages.', 'stationery', 799, 25);
  addProduct('Fountain pen', 'Steel nib, refillable.', 'stationery', 2400, 0);
  addProduct('Tote bag', 'Organic cotton.', 'accessories', 1500, 7);
}

const money = (cents) => cents / 100;
const productJson = (p) => ({ id: p.id, name: p.name, description: p.description, category: p.category,
  price: money(p.cents), stock: p.stock });
const orderJson = (o) => ({ id: o.id, userId: o.userId, status: o.status, total: money(o.cents),
  createdAt: o.createdAt, products: o.lines.map((l) => ({ productId: l.productId, quantity: l.quantity,
    price: money(l.cents) })) });
function cartJson(userId) {
  const cart = db.carts.get(userId) || new Map();
  let total = 0;
  const items = [];
  for (const [productId, quantity] of cart) {
    const p = db.products.find((x) => x.id === productId);
    const sub = p.cents * quantity;
    total += sub;
    items.push({ productId, name: p.name, quantity, price: money(p.cents), subtotal: money(sub) });
  }
  return { userId, items, total: money(total) };
}

// ---- Faults and the mirror's state ---------------------------------------
const on = (name) => ALLOW_FAULTS && faultPoints.some((f) => f.name === name && f.enabled);
function mirrorState() {
  const pDown = on('disk/primary/write') || on('disk/primary/full');
  const mDown = on('disk/mirror/write') || on('disk/mirror/full');
  if (pDown && mDown) return 'failed';
  if (pDown || mDown || mirror.seqPrimary !== mirror.seqMirror) return 'degraded';
  return 'in-sync';
}
class HttpError extends Error {
  constructor(status, error, detail) { super(error); this.status = status; this.detail = detail === undefined ? null : detail; }
}
// Every write goes through here: 503 when a copy's disk is down (nothing applied).
function write(fn) {
  if (on('disk/primary/write') || on('disk/primary/full')) {
    mirror.lastError = on('disk/primary/full') ? 'primary: database or disk is full' : 'primary: disk I/O error';
    throw new HttpError(503, 'storage unavailable', 'the primary copy could not write; the write was not applied');
  }
  const result = fn();
  mirror.seqPrimary++;
  if (on('disk/mirror/write') || on('disk/mirror/full')) {
    mirror.lastError = on('disk/mirror/full') ? 'mirror: database or disk is full' : 'mirror: disk I/O error';
  } else {
    if (mirror.seqMirror !== mirror.seqPrimary - 1) mirror.resyncs++;
    mirror.seqMirror = mirror.seqPrimary;
  }
  if (on('disk/primary/fsync')) throw new HttpError(500, 'outcome unknown', 'the commit could not be synced');
  return result;
}

// ---- Request helpers -----------------------------------------------------
function send(res, status, body, headers) {
  const h = Object.assign({ 'Cache-Control': 'no-store' }, headers || {});
  if (body === undefined) { res.writeHead(status, h); res.end(); return; }
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  if (!h['Content-Type']) h['Content-Type'] = 'application/json';
  res.writeHead(status, h);
  res.end(text);
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1 << 20) { reject(new HttpError(413, 'body too large', 'over 1 MiB')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
async function json(req) {
  const text = await readBody(req);
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new HttpError(400, 'malformed JSON', e.message);
  }
}
const isInt = (v) => Number.isInteger(v);
function needString(body, key, optional) {
  const v = body[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || (!optional && v.trim() === '')) throw new HttpError(400, `missing or mistyped field: ${key}`, null);
  return v;
}
function needPosInt(body, key) {
  const v = body[key];
  if (!isInt(v)) throw new HttpError(400, `missing or mistyped field: ${key}`, null);
  if (v <= 0) throw new HttpError(400, `${key} must be positive`, null);
  return v;
}
function priceCents(v) {
  if (typeof v !== 'number' || !isFinite(v) || v < 0) throw new HttpError(400, 'missing or mistyped field: price', null);
  const c = Math.round(v * 100);
  if (Math.abs(c - v * 100) > 1e-6) throw new HttpError(400, 'price has more than 2 decimals', null);
  return c;
}
function id(s) {
  if (!/^[0-9]+$/.test(s)) throw new HttpError(400, 'bad id', s);
  return Number(s);
}
const user = (uid) => {
  const u = db.users.find((x) => x.id === uid);
  if (!u) throw new HttpError(404, 'no such user', `no user with id ${uid}`);
  return u;
};
const product = (pid) => {
  const p = db.products.find((x) => x.id === pid);
  if (!p) throw new HttpError(404, 'no such product', `no product with id ${pid}`);
  return p;
};

function placeOrder(userId, lines) {
  user(userId);
  if (lines.length === 0) throw new HttpError(400, 'empty cart', 'nothing to check out');
  for (const l of lines) {
    const p = product(l.productId);
    if (p.stock < l.quantity) {
      throw new HttpError(409, 'insufficient stock', `insufficient stock: product ${p.id} has ${p.stock}, the order wants ${l.quantity}`);
    }
  }
  return write(() => {
    let cents = 0;
    const olines = lines.map((l) => {
      const p = product(l.productId);
      p.stock -= l.quantity;
      cents += p.cents * l.quantity;
      return { productId: p.id, quantity: l.quantity, cents: p.cents };
    });
    const o = { id: db.next.o++, userId, status: 'pending', cents, createdAt: new Date().toISOString(), lines: olines };
    db.orders.push(o);
    return o;
  });
}
const TRANSITIONS = { pending: ['shipped', 'cancelled'], shipped: ['delivered'], delivered: [], cancelled: [] };

// ---- Routes --------------------------------------------------------------
async function route(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const m = req.method;
  const known = (methods) => { if (!methods.includes(m)) throw new HttpError(405, 'method not allowed', `${m} ${url.pathname}`); };

  if (parts[0] === 'products') {
    if (parts.length === 1) {
      known(['GET', 'POST']);
      if (m === 'GET') {
        const q = (url.searchParams.get('q') || '').toLowerCase();
        const cat = url.searchParams.get('category');
        const inStock = url.searchParams.get('inStock') === 'true';
        return send(res, 200, db.products.filter((p) => (!cat || p.category === cat) && (!inStock || p.stock > 0) &&
          (!q || p.name.toLowerCase().includes(q) || p.description.toLowerCase().includes(q))).map(productJson));
      }
      const b = await json(req);
      const name = needString(b, 'name');
      const cents = priceCents(b.price);
      if (!isInt(b.stock) || b.stock < 0) throw new HttpError(400, 'missing or mistyped field: stock', null);
      return send(res, 201, productJson(write(() => addProduct(name, needString(b, 'description', true) || '',
        needString(b, 'category', true) || '', cents, b.stock))));
    }
    if (parts.length === 2) {
      known(['GET', 'PUT', 'DELETE']);
      const p = product(id(parts[1]));
      if (m === 'GET') return send(res, 200, productJson(p));
      if (m === 'DELETE') {
        if (db.orders.some((o) => o.lines.some((l) => l.productId === p.id))) throw new HttpError(409, 'product still ordered', null);
        write(() => { db.products.splice(db.products.indexOf(p), 1); });
        return send(res, 204);
      }
      const b = await json(req);
      const name = needString(b, 'name');
      const cents = priceCents(b.price);
      if (!isInt(b.stock) || b.stock < 0) throw new HttpError(400, 'missing or mistyped field: stock', null);
      write(() => Object.assign(p, { name, cents, stock: b.stock,
        description: needString(b, 'description', true) || '', category: needString(b, 'category', true) || '' }));
      return send(res, 200, productJson(p));
    }
  }
  if (parts[0] === 'users') {
    if (parts.length === 1) {
      known(['POST']);
      const b = await json(req);
      const name = needString(b, 'name');
      const email = needString(b, 'email').trim();
      if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new HttpError(400, 'bad email', email);
      if (db.users.some((u) => u.email.toLowerCase() === email.toLowerCase())) throw new HttpError(409, 'duplicate email', email);
      return send(res, 201, write(() => { const u = { id: db.next.u++, name, email }; db.users.push(u); return u; }));
    }
    if (parts.length === 2) {
      known(['GET', 'PUT']);
      const u = db.users.find((x) => x.email.toLowerCase() === parts[1].toLowerCase());
      if (!u) throw new HttpError(404, 'no such user', `no user with email ${parts[1]}`);
      if (m === 'GET') return send(res, 200, u);
      const b = await json(req);
      write(() => { if (b.name) u.name = b.name; if (b.newEmail) u.email = b.newEmail; });
      return send(res, 200, u);
    }
  }
  if (parts[0] === 'orders') {
    if (parts.length === 1) {
      known(['POST']);
      const b = await json(req);
      if (!isInt(b.userId)) throw new HttpError(400, 'missing or mistyped field: userId', null);
      if (!Array.isArray(b.products)) throw new HttpError(400, 'missing or mistyped field: products', null);
      const lines = b.products.map((l) => ({ productId: needPosInt(l, 'productId'), quantity: needPosInt(l, 'quantity') }));
      return send(res, 201, orderJson(placeOrder(b.userId, lines)));
    }
    if (parts.length === 2) {
      known(['GET', 'PUT']);
      if (m === 'GET') {
        const uid = id(parts[1]);
        user(uid);
        return send(res, 200, db.orders.filter((o) => o.userId === uid).sort((a, b) => b.id - a.id).map(orderJson));
      }
      const o = db.orders.find((x) => x.id === id(parts[1]));
      if (!o) throw new HttpError(404, 'no such order', null);
      const b = await json(req);
      const st = needString(b, 'status');
      if (!(st in TRANSITIONS)) throw new HttpError(400, 'unknown status', st);
      if (st !== o.status && !TRANSITIONS[o.status].includes(st)) {
        throw new HttpError(409, 'status transition not allowed', `${o.status} -> ${st}`);
      }
      write(() => {
        if (st === 'cancelled' && o.status !== 'cancelled') for (const l of o.lines) { const p = db.products.find((x) => x.id === l.productId); if (p) p.stock += l.quantity; }
        o.status = st;
      });
      return send(res, 200, orderJson(o));
    }
  }
  // /cart/... is the workshop's (POST sets, answers {"id": qty}); /shop/cart/... the front end's (POST adds).
  const view = parts[0] === 'shop' && parts[1] === 'cart';
  if (view) parts.shift();
  const shape = (uid) => (view ? cartJson(uid) : Object.fromEntries([...(db.carts.get(uid) || new Map())].sort((a, b) => a[0] - b[0])));
  if (parts[0] === 'cart' && parts.length >= 2) {
    const uid = id(parts[1]);
    if (parts.length === 2) {
      known(['GET', 'POST']);
      user(uid);
      if (m === 'GET') return send(res, 200, shape(uid));
      const b = await json(req);
      const pid = needPosInt(b, 'productId');
      const qty = needPosInt(b, 'quantity');
      product(pid);
      write(() => {
        if (!db.carts.has(uid)) db.carts.set(uid, new Map());
        const c = db.carts.get(uid);
        c.set(pid, (view ? c.get(pid) || 0 : 0) + qty);
      });
      return send(res, 200, shape(uid));
    }
    if (parts.length === 3 && parts[2] === 'checkout' && !view) {
      known(['POST']);
      user(uid);
      const c = db.carts.get(uid) || new Map();
      if (c.size === 0) throw new HttpError(400, 'empty cart', 'nothing to check out');
      const o = placeOrder(uid, [...c].map(([productId, quantity]) => ({ productId, quantity })));
      db.carts.delete(uid);
      return send(res, 201, orderJson(o));
    }
    if (parts.length === 4 && parts[2] === 'item') {
      known(['DELETE']);
      user(uid);
      const pid = id(parts[3]);
      const c = db.carts.get(uid);
      if (!c || !c.has(pid)) throw new HttpError(404, 'not in cart', `product ${pid} is not in the cart`);
      write(() => c.delete(pid));
      return send(res, 200, shape(uid));
    }
  }
  if (parts.length === 2 && parts[1] === 'status' && ['mirror', 'replication', 'sync'].includes(parts[0])) {
    known(['GET']);
    const wanted = { mirror: 'mirror', replication: 'async', sync: 'offline' }[parts[0]];
    if (TOPOLOGY !== wanted) throw new HttpError(404, 'not configured', `topology is ${TOPOLOGY}`);
    if (parts[0] === 'mirror') {
      const state = mirrorState();
      const behind = mirror.seqPrimary !== mirror.seqMirror ? 'mirror' : null;
      return send(res, 200, { topology: 'mirror', state, since: mirror.since, lead: 'primary', behind,
        changesBehind: mirror.seqPrimary - mirror.seqMirror, seqPrimary: mirror.seqPrimary,
        seqMirror: mirror.seqMirror, resyncs: mirror.resyncs, lastError: state === 'in-sync' ? '' : mirror.lastError });
    }
    if (parts[0] === 'replication') {
      return send(res, 200, { topology: 'async', state: 'replicating', lagChanges: 0, lagSeconds: 0.2,
        shippedSeq: mirror.seqPrimary, appliedSeq: mirror.seqPrimary });
    }
    if ((req.headers.accept || '').includes('text/html')) {
      return send(res, 200, '<table><tr><th>table</th><th>PENDING</th></tr><tr><td>orders</td><td>0</td></tr></table>',
        { 'Content-Type': 'text/html' });
    }
    return send(res, 200, { topology: 'offline', online: true, pending: 0, synced: mirror.seqPrimary, failed: 0,
      tables: { orders: { PENDING: 0, SYNCED: db.orders.length, FAILED: 0 } } });
  }
  if (parts.length === 1 && parts[0] === 'heartbeat') {
    known(['GET']);
    return send(res, 200, { status: 'ok', node: 'primary', topology: TOPOLOGY, uptimeSeconds: (Date.now() - started) / 1000 });
  }
  if (parts.length === 1 && parts[0] === 'faults') {
    if (!ALLOW_FAULTS) throw new HttpError(404, 'not found', 'fault control needs --allow-faults');
    known(['GET', 'POST']);
    if (m === 'GET') return send(res, 200, { pid: process.pid, points: faultPoints });
    const b = await json(req);
    const f = faultPoints.find((x) => x.name === b.name);
    if (!f) throw new HttpError(400, 'invalid fault', `'${b.name}' is not a point of this server`);
    if (b.action !== 'enable' && b.action !== 'disable') throw new HttpError(400, 'invalid fault', 'action must be enable or disable');
    if (b.action === 'enable' && 'errno' in f && b.errno != null) {
      if (!ERRNOS.includes(String(b.errno))) throw new HttpError(400, 'invalid fault', 'errno must be a name like "EIO" or "ENOSPC" (not EINTR or EAGAIN)');
      f.errno = String(b.errno);
    }
    if (b.action === 'enable' && 'delayMs' in f && b.delayMs != null) {
      if (!isInt(b.delayMs) || b.delayMs < 1 || b.delayMs > 60000) throw new HttpError(400, 'invalid fault', 'delayMs must be 1 to 60000');
      f.delayMs = b.delayMs;
    }
    f.enabled = b.action === 'enable';
    if (!f.enabled && !on('disk/mirror/write') && !on('disk/mirror/full')) {
      if (mirror.seqMirror !== mirror.seqPrimary) { mirror.resyncs++; mirror.seqMirror = mirror.seqPrimary; }
    }
    mirror.since = new Date().toISOString();
    return send(res, 200, { pid: process.pid, points: faultPoints });
  }
  return null; // not an API route
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml', '.ico': 'image/x-icon' };
function serveStatic(req, res, url) {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(404, 'not found', url.pathname);
  const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
  const file = path.resolve(WEB, rel);
  if (!file.startsWith(WEB + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new HttpError(404, 'not found', url.pathname);
  }
  send(res, 200, fs.readFileSync(file), { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const slow = faultPoints.find((f) => f.enabled && f.name.endsWith('/slow'));
  if (slow) await new Promise((r) => setTimeout(r, slow.delayMs));
  try {
    if ((await route(req, res, url)) === null) serveStatic(req, res, url);
  } catch (e) {
    if (e instanceof HttpError) send(res, e.status, { error: e.message, detail: e.detail });
    else { console.error(e); send(res, 500, { error: 'internal error', detail: String(e) }); }
  }
  if (process.env.MOCK_LOG) console.error(`${req.method} ${req.url} ${res.statusCode}`);
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`mock faultdrill serve on http://127.0.0.1:${PORT}/ (topology ${TOPOLOGY}${ALLOW_FAULTS ? ', faults allowed' : ''})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
