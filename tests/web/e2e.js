#!/usr/bin/env node
// e2e.js — the browser end-to-end test of the shop page (platform/web/)
// against a live server: `faultdrill serve` (the CTest test) or the in-memory
// mock (mock_server.js, for a quick UI check while the C server moves).
//
//   node e2e.js --server build/sim/faultdrill --web platform/web --out DIR
//   node e2e.js --mock --web platform/web --out DIR
//
// It starts the server on a free loopback port with a fresh --data dir, adds
// three products over HTTP, then drives Debian's chromium (headless, through
// playwright-core) like a shopper: browse, search, filter, sign up, fill the
// cart, get a stock refusal that names the product, check out, see the order
// in the history, reload (the account is remembered), read the redundancy
// panel, which must be in view without scrolling on a laptop's screen
// (1366x768) with the worst redundancy state in the header, in words and
// colour. It saves DIR/screenshot.png, stops the server with SIGTERM and
// requires exit status 0.
//
//   --faults         strict mirror: one disk refuses, a checkout is refused and
//                    the header says "failed" with no phantom "changes behind";
//                    both disks down, 503 and nothing charged; healed, in sync
//   --topology async the header says "lagging" while an order crosses the WAN,
//                    "retrying" while the link drops every batch, then in sync
//   --workshop       tests/web/workshop/index.html, a page that uses the cart
//                    routes exactly as the workshop's own front end does playwright-core is found through NODE_PATH (run.sh
// installs it into the build tree). Exit 0 on success, 1 on any failure.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const httpLib = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const MOCK = args.includes('--mock');
const SERVER = opt('--server');
const WEB = path.resolve(opt('--web', path.join(__dirname, '..', '..', 'platform', 'web')));
const OUT = path.resolve(opt('--out', process.cwd()));
const CHROMIUM = opt('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
const HEADED = args.includes('--headed');
const FAULTS = args.includes('--faults'); // the fault-panel scenario, server started with --allow-faults
const TOPOLOGY = opt('--topology'); // e.g. async: the redundancy panel must show its replication
const WORKSHOP = args.includes('--workshop'); // the workshop's own front end's use of the cart routes
const VIEW = { width: 1366, height: 768 }; // a laptop's screen
const BUDGET_MS = Number(process.env.WEB_E2E_BUDGET_MS || 90000);

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);
function fail(msg) { throw new Error(msg); }
function expect(cond, msg) { if (!cond) fail(msg); }

let server = null;
let serverLog = '';
let browser = null;
let dataDir = null;
const problems = [];
let page = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// One request with node's http module (no fetch: Debian 12's node 18 warns it is experimental).
function http(base, method, p, body) {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : null;
    const headers = { Accept: 'application/json' };
    // a state-changing request says JSON even without a body (DESIGN.md section 7)
    if (payload || method !== 'GET') headers['Content-Type'] = 'application/json';
    if (payload) headers['Content-Length'] = Buffer.byteLength(payload);
    const req = httpLib.request(`${base}${p}`, { method, headers, agent: false, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let data = null;
        try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
        resolve({ status: res.statusCode, data, type: res.headers['content-type'] || '' });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(payload || undefined);
  });
}

async function startServer() {
  const port = await freePort();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultdrill-web-'));
  let cmd;
  let argv;
  if (MOCK) {
    cmd = process.execPath;
    argv = [path.join(__dirname, 'mock_server.js'), '--port', String(port), '--web', WEB, '--no-seed'];
    if (FAULTS) argv.push('--allow-faults');
  } else {
    expect(SERVER, 'no --server given (the path of the faultdrill executable)');
    expect(fs.existsSync(SERVER), `the server executable ${SERVER} does not exist: build the faultdrill target first`);
    const help = spawnSync(SERVER, ['serve', '--help'], { encoding: 'utf8', timeout: 10000 });
    const helpText = `${help.stdout || ''}${help.stderr || ''}`;
    expect(help.status === 0, `\`${SERVER} serve --help\` exited ${help.status}: ${helpText.trim() || help.error}`);
    cmd = SERVER;
    argv = ['serve', '--port', String(port), '--data', dataDir];
    if (FAULTS || TOPOLOGY === 'async' || TOPOLOGY === 'cluster') argv.push('--allow-faults');
    // offline: a sync only when the test asks for one (POST /sync/run)
    if (TOPOLOGY) argv.push('--topology', TOPOLOGY, ...(TOPOLOGY === 'offline' ? ['--interval', '600000'] : ['--delay', '4000']));
    // Serve this source tree's page (or the workshop's), not whatever the binary was built with.
    if (/--web\b/.test(helpText)) argv.push('--web', WORKSHOP ? path.join(__dirname, 'workshop') : WEB);
    // Only the products the test adds (the server seeds a demo catalog by default).
    if (/--no-demo\b/.test(helpText)) argv.push('--no-demo');
  }
  log(`starting ${path.basename(cmd)} ${argv.join(' ')}`);
  server = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  server.exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  server.on('error', (e) => { serverLog += `spawn error: ${e.message}\n`; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) {
      fail(`the server exited before answering (status ${server.exitCode}, signal ${server.signalCode})`);
    }
    try {
      const r = await http(base, 'GET', '/heartbeat');
      if (r.status === 200) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) fail('the server did not answer GET /heartbeat with 200 within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`server up on ${base}`);
  return base;
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return null;
  server.kill('SIGTERM');
  const timeout = new Promise((r) => setTimeout(() => r(null), 15000));
  const res = await Promise.race([server.exited, timeout]);
  if (res === null) {
    server.kill('SIGKILL');
    await server.exited;
    fail('the server did not exit within 15 s of SIGTERM');
  }
  return res;
}

async function seed(base) {
  const products = [
    { name: 'Stoneware mug', description: 'Survives the dishwasher.', category: 'kitchen', price: 12.5, stock: 10 },
    { name: 'Cast iron teapot', description: 'One litre.', category: 'kitchen', price: 34.9, stock: 2 },
    { name: 'Dotted notebook', description: 'A5, 120 pages.', category: 'stationery', price: 7.99, stock: 25 },
  ];
  const out = [];
  for (const p of products) {
    const r = await http(base, 'POST', '/products', p);
    expect(r.status === 201, `POST /products answered ${r.status}, not 201: ${JSON.stringify(r.data)}`);
    expect(Number.isInteger(r.data.id), `POST /products: no integer id in ${JSON.stringify(r.data)}`);
    expect(r.data.price === p.price, `POST /products: price ${JSON.stringify(r.data.price)}, expected ${p.price} (decimal units)`);
    out.push(r.data);
  }
  return out;
}

const sel = (testid) => `[data-testid="${testid}"]`;
const card = (p) => page.locator(`${sel('product-card')}[data-product-id="${p.id}"]`);
const message = () => page.locator(sel('message'));
const waitText = async (locator, re, what, timeout) => {
  try {
    await locator.filter({ hasText: re }).first().waitFor(timeout ? { timeout } : undefined);
  } catch (e) {
    const now = await locator.first().textContent().catch(() => '(absent)');
    fail(`${what}: expected ${re}, saw ${JSON.stringify(now)}`);
  }
};


// The redundancy panel is on the first screen: its badge is in view at the top of the page.
async function redundancyInView(what) {
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = await page.locator('.platform .status-card:not([hidden]) .badge').first().boundingBox();
  expect(box && box.y >= 0 && box.y + box.height <= VIEW.height,
    `${what}: the redundancy panel's state is not on a ${VIEW.width}x${VIEW.height} screen (${JSON.stringify(box)})`);
}

// The header pill: the worst redundancy state in words (re) and colour (ok, warn, bad).
async function headerSays(re, tone, what) {
  const hb = page.locator(`#heartbeat[data-state="${tone}"]`);
  try {
    await hb.filter({ hasText: re }).waitFor({ timeout: 15000 });
  } catch (_) {
    const now = await page.locator('#heartbeat').evaluate((h) => `${h.dataset.state}: ${h.textContent.trim()}`);
    fail(`${what}: the header should say ${re} (${tone}); it says ${now}`);
  }
}

async function shopScenario(base, [mug, teapot, notebook], mirrorStatus) {
  log('load the page');
  await page.goto(`${base}/`);
  await page.locator('body[data-ready="true"]').waitFor();
  await page.locator(sel('product-card')).nth(2).waitFor();
  expect(await page.locator(sel('product-card')).count() === 3, 'the page shows not 3 products');
  await waitText(card(mug).locator(sel('product-price')), /^12\.50$/, 'mug price with 2 decimals');
  await waitText(card(notebook).locator(sel('product-price')), /^7\.99$/, 'notebook price');
  await waitText(card(teapot).locator(sel('product-stock')), /Only 2 left/, 'teapot stock');
  if (mirrorStatus === 200) {
    await headerSays(/primary · mirror · mirror in sync/, 'ok', 'a healthy mirror');
    await redundancyInView('the shop page');
  }

  log('search and filter');
  await page.fill('#search', 'notebook');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="product-card"]').length === 1);
  await waitText(page.locator(sel('product-name')), /Dotted notebook/, 'search result');
  await page.fill('#search', '');
  await page.selectOption('#category', 'kitchen');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="product-card"]').length === 2);
  await page.selectOption('#category', '');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="product-card"]').length === 3);

  log('sign up');
  await signUp('Ada Lovelace', 'ada@example.org');
  await waitText(message(), /Welcome/, 'sign-up message');

  log('fill the cart');
  await card(mug).locator(sel('qty')).fill('2');
  await card(mug).locator(sel('add-to-cart')).click();
  await waitText(page.locator(sel('cart-total')), /^25\.00$/, 'cart total after 2 mugs');
  await card(teapot).locator(sel('qty')).fill('3');
  await card(teapot).locator(sel('add-to-cart')).click();
  await waitText(message(), /teapot/i, 'adding 3 teapots');
  const teapotInCart = page.locator(`${sel('cart-item')}[data-product-id="${teapot.id}"]`);
  if (await teapotInCart.count()) {
    log('check out with too many teapots: expect a stock refusal naming the teapot');
    await page.click('#checkout-btn');
    await waitText(message(), /Not enough stock for “Cast iron teapot”/, 'the 409 message');
    await waitText(message(), /nothing was charged/, 'the 409 message');
    await teapotInCart.locator(sel('cart-remove')).click();
    await teapotInCart.waitFor({ state: 'detached' });
  } else {
    await waitText(message(), /Not enough stock for “Cast iron teapot”/, 'the 409 message when adding');
  }
  await waitText(page.locator(sel('cart-total')), /^25\.00$/, 'cart total with the mugs alone');

  log('check out');
  await page.click('#checkout-btn');
  await waitText(message(), /Order #\d+ placed: 25\.00/, 'checkout message');
  const order = page.locator(sel('order')).first();
  await order.waitFor();
  await waitText(order.locator(sel('order-status')), /^pending$/, 'order status');
  await waitText(order.locator(sel('order-total')), /^25\.00$/, 'order total');
  await waitText(order, /2 × Stoneware mug @ 12\.50/, 'order line');
  await page.locator(sel('cart-item')).first().waitFor({ state: 'detached' });
  await waitText(card(mug).locator(sel('product-stock')), /8 in stock/, 'mug stock after checkout');
  const ada = await http(base, 'GET', '/users/ada%40example.org');
  expect(ada.status === 200 && Number.isInteger(ada.data.id), `GET /users/:email: ${ada.status} ${JSON.stringify(ada.data)}`);
  const orders = await http(base, 'GET', `/orders/${ada.data.id}`);
  expect(orders.status === 200 && orders.data.length === 1 && orders.data[0].total === 25 &&
    String(orders.data[0].id) === await order.getAttribute('data-order-id'), `GET /orders/${ada.data.id}: ${JSON.stringify(orders.data)}`);

  log('redundancy panel');
  // offline: the shop's writes wait for a sync the test asks for, so the header warns
  const settled = TOPOLOGY === 'offline' ? '#heartbeat[data-state="warn"]' : '#heartbeat[data-state="ok"]';
  await page.locator(settled).waitFor();
  if (mirrorStatus === 200) {
    await waitText(page.locator(sel('mirror-state')), /^(in-sync|degraded|failed)$/, 'mirror state badge');
    log(`mirror: ${await page.locator(sel('mirror-state')).textContent()}, lead ${await page.locator(sel('mirror-lead')).textContent()}`);
  } else {
    log(`GET /mirror/status answered ${mirrorStatus}: the mirror panel stays hidden`);
    await page.waitForTimeout(1200);
    expect(await page.locator(sel('mirror-panel')).isHidden(), 'the mirror panel shows though /mirror/status is not 200');
  }
  const repl = await http(base, 'GET', '/replication/status');
  if (TOPOLOGY === 'async') {
    // An order is acknowledged before the secondary has it (4 s WAN): the
    // header says "lagging" and the panel shows the lag, then the catch-up.
    expect(repl.status === 200, `GET /replication/status on async: ${repl.status}`);
    await page.locator(sel('replication-panel')).waitFor();
    await redundancyInView('async');
    const lag = page.locator('#replication-fields dd[data-key="lagChanges"]');
    const fresh = await http(base, 'POST', '/orders', { userId: ada.data.id, products: [{ productId: notebook.id, quantity: 1 }] });
    expect(fresh.status === 201, `POST /orders: ${fresh.status} ${JSON.stringify(fresh.data)}`);
    await headerSays(/secondary lagging: \d+ changes? behind/, 'warn', 'an order crossing the WAN');
    await waitText(lag, /^[1-9]\d* changes?$/, 'a lag while the order crosses the WAN');
    await page.screenshot({ path: path.join(OUT, 'screenshot-async-lag.png') });
    await waitText(lag, /^0 changes$/, 'the secondary caught up');
    await headerSays(/secondary in sync/, 'ok', 'the secondary caught up');

    log('the link drops every batch: the header says retrying');
    const drop = page.locator(`${sel('fault-point')}[data-name="net/primary/secondary/drop"]`);
    await waitText(drop.locator(sel('fault-effect')), /^messages from primary to secondary are lost$/, 'the drop fault names its effect');
    expect(await drop.locator(sel('fault-errno')).count() === 0, 'a dropped message has no errno to choose');
    await setFault('net/primary/secondary/drop', true);
    await waitText(message(), /messages from primary to secondary are lost/, 'the fault message names its effect');
    const again = await http(base, 'POST', '/orders', { userId: ada.data.id, products: [{ productId: notebook.id, quantity: 1 }] });
    expect(again.status === 201, `POST /orders with the link dropping: ${again.status}`);
    await headerSays(/replication retrying/, 'warn', 'every batch lost');
    await waitText(page.locator(sel('replication-state')), /^retrying$/, 'the replication badge');
    await page.screenshot({ path: path.join(OUT, 'screenshot-async-retrying.png') });
    await setFault('net/primary/secondary/drop', false);
    // the shipper resends when its resend timer (rtoMs) fires, then the batch
    // and its ack each cross the WAN: wait that long, and some
    const st = (await http(base, 'GET', '/replication/status')).data;
    const catchUp = (Number(st.rtoMs) || 0) + 2 * (Number(st.delayMs) || 0) + 8000;
    await waitText(lag, /^0 changes$/, 'the secondary caught up after the link healed', catchUp);
    await headerSays(/secondary in sync/, 'ok', 'the link healed');
    log(`replication: ${await page.locator(sel('replication-state')).textContent()}, caught up`);
  } else if (TOPOLOGY === 'offline') {
    // The shop's writes wait in the sync queue until a sync: the header says
    // how many; a sync pass (POST /sync/run) brings central in sync.
    await page.locator(sel('sync-panel')).waitFor();
    await redundancyInView('offline');
    await headerSays(/[1-9]\d* changes? waiting to sync/, 'warn', 'changes not yet pushed to central');
    await waitText(page.locator('#sync-fields dd[data-key="rows"]'), /^[1-9]\d* waiting · 0 synced · 0 failed$/, 'the queue in words');
    await page.screenshot({ path: path.join(OUT, 'screenshot-offline-waiting.png') });
    const run = await http(base, 'POST', '/sync/run');
    expect(run.status === 200 && run.data.rows.pending === 0, `POST /sync/run: ${run.status} ${JSON.stringify(run.data && run.data.rows)}`);
    await headerSays(/central in sync/, 'ok', 'after a sync pass');
    await waitText(page.locator('#sync-fields dd[data-key="rows"]'), /^0 waiting · [1-9]\d* synced · 0 failed$/, 'the queue after the sync');
  } else if (TOPOLOGY === 'cluster') {
    // A replica whose link drops every message: the leader loses contact and
    // the header says it is down; healed, it catches up.
    expect(repl.status === 200, `GET /replication/status on cluster: ${repl.status}`);
    await page.locator(sel('replication-panel')).waitFor();
    await waitText(page.locator('#replication-title'), /^Cluster replicas$/, 'the cluster panel');
    await redundancyInView('cluster');
    await headerSays(/\d+ replicas in sync/, 'ok', 'a healthy cluster');
    await setFault('net/leader/replica1/drop', true);
    const cut = await http(base, 'POST', '/orders', { userId: ada.data.id, products: [{ productId: notebook.id, quantity: 1 }] });
    expect(cut.status === 201, `POST /orders with replica1 cut off: ${cut.status}`);
    await headerSays(/replica1 (down|lagging|catching up)/, 'warn', 'replica1 cut off');
    await page.screenshot({ path: path.join(OUT, 'screenshot-cluster-replica-cut.png') });
    await setFault('net/leader/replica1/drop', false);
    await headerSays(/\d+ replicas in sync/, 'ok', 'replica1 back');
  } else {
    expect(await page.locator(sel('replication-panel')).isHidden() === (repl.status !== 200),
      `replication panel visibility vs GET /replication/status ${repl.status}`);
  }
  const faultsStatus = (await http(base, 'GET', '/faults')).status;
  expect(await page.locator(sel('faults-panel')).isHidden() === (faultsStatus !== 200), `fault panel visibility vs GET /faults ${faultsStatus}`);

  log('reload: the account is remembered');
  await page.reload();
  await waitText(page.locator(sel('account-name')), /Ada Lovelace/, 'name after reload');
  await page.locator(sel('order')).first().waitFor();
  await page.locator('#heartbeat[data-state="ok"]').waitFor(); // offline synced above
  if (mirrorStatus === 200) await page.locator(`${sel('mirror-state')}[data-state]`).waitFor();
}

async function signUp(name, email) {
  await page.fill('#auth-email', email);
  await page.fill('#auth-name', name);
  await page.click('#signup-btn');
  await waitText(page.locator(sel('account-name')), new RegExp(name), 'signed-in name');
}

async function setFault(name, enable, errno) {
  const row = page.locator(`${sel('fault-point')}[data-name="${name}"]`);
  if (await row.count() === 0) {
    const names = await page.locator(sel('fault-point')).evaluateAll((rs) => rs.map((r) => r.dataset.name));
    fail(`the fault panel lists no ${name}; it lists: ${names.join(', ') || '(nothing)'}`);
  }
  if (errno) await row.locator(sel('fault-errno')).selectOption(errno);
  await row.locator(sel('fault-toggle')).click();
  try {
    await page.locator(`${sel('fault-point')}[data-name="${name}"][data-enabled="${enable}"]`).waitFor();
  } catch (_) {
    fail(`${name} did not show as ${enable ? 'enabled' : 'disabled'} after the click (message: ${await message().textContent()})`);
  }
}

// The server runs with --allow-faults: the fault panel drives both copies'
// disks down, a checkout is refused with 503 and nothing is charged; healed,
// the same cart checks out and the mirror comes back in sync.
async function faultScenario(base, [mug]) {
  const faults = await http(base, 'GET', '/faults');
  expect(faults.status === 200 && faults.data && Array.isArray(faults.data.points),
    `GET /faults with --allow-faults: ${faults.status} ${JSON.stringify(faults.data).slice(0, 300)}`);
  log('load the page: the fault panel shows');
  await page.goto(`${base}/`);
  await page.locator('body[data-ready="true"]').waitFor();
  await page.locator(sel('faults-panel')).waitFor();
  await page.locator(sel('fault-point')).first().waitFor();
  log('the filter narrows the fault points to those whose name has the text');
  await page.fill(sel('fault-filter'), 'mirror/wri');
  const shown = await page.locator(`${sel('fault-point')}:visible`)
    .evaluateAll((rs) => rs.map((r) => r.dataset.name));
  expect(shown.length >= 1 && shown.every((n) => n.includes('mirror/wri')) && shown.includes('disk/mirror/write'),
    `filter "mirror/wri" shows ${JSON.stringify(shown)}`);
  await page.fill(sel('fault-filter'), '');
  const all = await page.locator(`${sel('fault-point')}:visible`).count();
  expect(all > shown.length, `an empty filter shows every point again (${all} against ${shown.length})`);
  await signUp('Grace Hopper', 'grace@example.org');
  await card(mug).locator(sel('add-to-cart')).click();
  await waitText(page.locator(sel('cart-total')), /^12\.50$/, 'cart total');

  await headerSays(/mirror in sync/, 'ok', 'before any fault');
  await redundancyInView('the fault scenario');
  const before = await http(base, 'GET', '/mirror/status');

  log('strict: the mirror\'s disk refuses; a checkout is refused and nothing moves');
  await setFault('disk/mirror/write', true, 'EIO');
  await waitText(page.locator(`${sel('fault-point')}[data-name="disk/mirror/write"] ${sel('fault-effect')}`),
    /^writes to mirror's database fail$/, 'the disk fault names its effect');
  await page.click('#checkout-btn');
  await waitText(message(), /nothing was charged/, 'the refused checkout');
  await headerSays(/mirror failed: writes refused/, 'bad', 'a strict mirror refusing writes');
  await waitText(page.locator(sel('mirror-state')), /^failed$/, 'the mirror badge');
  await waitText(page.locator(sel('mirror-changes')), /^0 changes$/, 'no phantom "changes behind" after a refused write');
  const refused = await http(base, 'GET', '/mirror/status');
  expect(refused.data.changesBehind === 0 && refused.data.seqPrimary === before.data.seqPrimary &&
    refused.data.seqMirror === before.data.seqMirror,
    `a refused write moved the mirror's positions: before ${JSON.stringify(before.data)}, after ${JSON.stringify(refused.data)}`);
  await page.screenshot({ path: path.join(OUT, 'screenshot-strict-refused.png') });

  log('enable disk/primary/write (EIO) too');
  await setFault('disk/primary/write', true, 'EIO');
  await waitText(page.locator(sel('faults-active')), /2 active/, 'active fault count');

  log('check out: expect 503, nothing charged');
  await page.click('#checkout-btn');
  await waitText(message(), /storage is down/, 'the 503 message');
  await waitText(message(), /nothing was charged/, 'the 503 message');
  log(`message: ${await message().textContent()}`);
  const user = (await http(base, 'GET', '/users/grace%40example.org')).data;
  const orders = await http(base, 'GET', `/orders/${user.id}`);
  expect(orders.status !== 200 || orders.data.length === 0, `an order exists after the 503: ${JSON.stringify(orders.data)}`);
  const p = await http(base, 'GET', `/products/${mug.id}`);
  expect(p.status !== 200 || p.data.stock === mug.stock, `the mug's stock changed after the 503: ${JSON.stringify(p.data)}`);
  expect(await page.locator(sel('order')).count() === 0, 'the history shows an order after the 503');
  const mirrorStatus = (await http(base, 'GET', '/mirror/status')).status;
  if (mirrorStatus === 200) {
    await waitText(page.locator(sel('mirror-state')), /^(degraded|failed)$/, 'mirror state with both disks failing');
    log(`mirror: ${await page.locator(sel('mirror-state')).textContent()}; ${await page.locator(sel('mirror-error')).textContent()}`);
  }
  await page.screenshot({ path: path.join(OUT, 'screenshot-faults-down.png'), fullPage: true });

  log('disable both faults, check out again');
  await setFault('disk/primary/write', false);
  await setFault('disk/mirror/write', false);
  await page.locator(sel('faults-active')).waitFor({ state: 'hidden' });
  await page.click('#checkout-btn');
  await waitText(message(), /Order #\d+ placed: 12\.50/, 'checkout after healing');
  await waitText(page.locator(sel('order')).first().locator(sel('order-status')), /^pending$/, 'order status');
  if (mirrorStatus === 200) {
    try {
      await page.locator(`${sel('mirror-state')}[data-state="in-sync"]`).waitFor({ timeout: 10000 });
    } catch (_) {
      fail(`the mirror did not come back in sync within 10 s of healing (state ${await page.locator(sel('mirror-state')).textContent()})`);
    }
    await headerSays(/mirror in sync/, 'ok', 'healed');
  }
}

// The workshop's own front end (DESIGN.md §7), played by tests/web/workshop/:
// list the products, set a quantity (1 then 3 gives 3), read the cart map,
// remove a line; the server's cart must agree at every step.
async function workshopScenario(base, [mug, teapot]) {
  const user = await http(base, 'POST', '/users', { name: 'Ada', email: 'ada@workshop.example' });
  expect(user.status === 201, `POST /users: ${user.status}`);
  const uid = user.data.id;
  const cartOf = async () => (await http(base, 'GET', `/cart/${uid}`)).data;
  await page.goto(`${base}/`);
  await page.locator('body[data-ready="true"]').waitFor();
  await page.fill('#user', String(uid));
  await page.dispatchEvent('#user', 'change');
  const line = (p) => page.locator(`#products li[data-product-id="${p.id}"]`);
  await waitText(line(mug).locator('.name'), /Stoneware mug/, 'the workshop page lists the products');
  const cartLine = (p) => page.locator(`#cart li.cart-line[data-product-id="${p.id}"]`);

  log('set 1 mug, then 3: the cart holds 3');
  await line(mug).locator('.quantity').fill('1');
  await line(mug).locator('.set').click();
  await waitText(cartLine(mug), new RegExp(`^Product ID: ${mug.id}, Quantity: 1 `), 'one mug');
  await line(mug).locator('.quantity').fill('3');
  await line(mug).locator('.set').click();
  await waitText(cartLine(mug), new RegExp(`^Product ID: ${mug.id}, Quantity: 3 `), 'three mugs, not four');
  await line(teapot).locator('.quantity').fill('2');
  await line(teapot).locator('.set').click();
  await waitText(cartLine(teapot), new RegExp(`^Product ID: ${teapot.id}, Quantity: 2 `), 'two teapots');
  const both = await cartOf();
  expect(JSON.stringify(both) === JSON.stringify({ [mug.id]: 3, [teapot.id]: 2 }), `GET /cart/${uid}: ${JSON.stringify(both)}`);
  await page.screenshot({ path: path.join(OUT, 'screenshot-workshop.png') });

  log('remove the mugs');
  await cartLine(mug).locator('.remove').click();
  await cartLine(mug).waitFor({ state: 'detached' });
  expect(await cartLine(teapot).count() === 1, 'the teapots went with the mugs');
  const left = await cartOf();
  expect(JSON.stringify(left) === JSON.stringify({ [teapot.id]: 2 }), `GET /cart/${uid} after the remove: ${JSON.stringify(left)}`);
  const error = await page.locator('#error').textContent();
  expect(error === '', `the workshop page reported: ${error}`);
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`FAIL: the test took over ${BUDGET_MS / 1000} s`);
    if (server) server.kill('SIGKILL');
    process.exit(1);
  }, BUDGET_MS);
  watchdog.unref();

  let pw;
  try {
    pw = require('playwright-core');
  } catch (e) {
    fail(`playwright-core cannot be loaded (NODE_PATH=${process.env.NODE_PATH || ''}): ${e.message}`);
  }
  expect(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  fs.mkdirSync(OUT, { recursive: true });

  const base = await startServer();
  const products = await seed(base);
  const page0 = await http(base, 'GET', '/');
  expect(page0.status === 200 && /text\/html/.test(page0.type), `GET / answered ${page0.status} ${page0.type}, not the page`);
  // the first screen as a student sees it (not scrolled), kept beside the full page
  const firstScreen = () => page.screenshot({ path: path.join(OUT, `screen-${FAULTS ? 'faults' : WORKSHOP ? 'workshop' : TOPOLOGY || 'mirror'}.png`) });
  const mirrorStatus = (await http(base, 'GET', '/mirror/status')).status;

  browser = await pw.chromium.launch({
    executablePath: CHROMIUM,
    headless: !HEADED,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const context = await browser.newContext({ viewport: VIEW, locale: 'en-GB' });
  context.setDefaultTimeout(8000);
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every 4xx/5xx fetch as "Failed to load resource"; those are expected here.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  if (FAULTS) await faultScenario(base, products);
  else if (WORKSHOP) await workshopScenario(base, products);
  else await shopScenario(base, products, mirrorStatus);

  const shot = path.join(OUT, FAULTS ? 'screenshot-faults.png' : WORKSHOP ? 'screenshot-workshop-end.png'
    : TOPOLOGY ? `screenshot-${TOPOLOGY}.png` : 'screenshot.png');
  await page.screenshot({ path: shot, fullPage: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await firstScreen();
  log(`screenshot: ${shot}`);
  expect(problems.length === 0, `the page reported errors:\n  ${problems.join('\n  ')}`);
  await browser.close();
  browser = null;

  log('stop the server with SIGTERM');
  const res = await stopServer();
  expect(res && res.code === 0, `the server exited with status ${res && res.code}, signal ${res && res.signal} after SIGTERM (expected 0)`);
  log(`PASS in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().then(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}, async (err) => {
  console.error(`FAIL: ${err.message}`);
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL');
    await server.exited;
  }
  if (problems.length) console.error(`--- the page reported ---\n  ${problems.join('\n  ')}`);
  if (serverLog) console.error(`--- server output ---\n${serverLog.slice(-6000)}`);
  if (dataDir) console.error(`data dir kept: ${dataDir}`);
  process.exit(1);
});
