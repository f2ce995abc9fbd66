// Switchyard live dashboard: plain JavaScript, no dependencies, no build.
//
// Polls the admin API about once a second and redraws in place:
//   GET /admin/replicas        replica table, live stats, health
//   GET /admin/events?since=N  the event feed after sequence N
//   GET /admin/config          clouds, model groups, version weights (on a new generation)
//   GET /admin/rollouts        rollout state per model group (optional: a 404 is fine)
//   GET /admin/costs           spend per tenant and key (every few seconds; shown when there are tenants)
//   GET /admin/fleet           live instances and the revision each serves (every few seconds; etcd mode only)
// Rates, traffic shares and sparklines are computed here from counter deltas.
//
// Auth: when an endpoint answers 401 the page asks for the admin token, keeps
// it in sessionStorage (this tab only) and sends it as `Authorization: Bearer`;
// it never goes into a URL. Data is written into the page as text only.
(() => {
  'use strict';

  const POLL_MS = 1000;
  const HIDDEN_POLL_MS = 5000;
  const HISTORY = 120; // sparkline samples: two minutes at 1 Hz
  const ROW_HISTORY = 40;
  const WINDOW_MS = 10000; // per-row req/s and traffic share are over this window
  const ROLLOUTS_RETRY_MS = 15000;
  const TENANTS_POLL_MS = 3000;
  const MAX_EVENTS = 200;
  const TOKEN_KEY = 'switchyard.adminToken';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const st = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    timer: 0,
    busy: false,
    polls: 0,
    samples: [], // { t, byId: Map(id -> { requests, errors }) }
    series: { rps: [], lat: [], err: [] },
    rowSeries: new Map(), // id -> req/s per poll
    structure: '',
    rows: new Map(), // id -> cells of its <tr>
    cloudRows: new Map(), // cloud -> stat cell
    modelRows: new Map(), // "cloud|model" -> stat cell
    collapsed: new Set(), // "cloud" or "cloud|model" keys folded away
    folded: false, // whether the first build chose what starts folded
    deadlines: new Map(), // id -> performance.now() when its ejection ends
    eventsSince: 0,
    eventsLoaded: false,
    config: null,
    configGeneration: null,
    rollouts: null, // Map(model -> rollout) once /admin/rollouts answered
    rolloutsRetryAt: 0,
    tenantsAt: 0,
    fleetAt: 0,
    lastOk: 0,
    waitingForToken: false,
  };

  class AuthError extends Error {}

  // ---------------------------------------------------------------- fetching

  async function api(path, optional) {
    const headers = { Accept: 'application/json' };
    if (st.token) headers.Authorization = 'Bearer ' + st.token;
    const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    if (res.status === 401) throw new AuthError('admin token required');
    if (optional && (res.status === 404 || res.status === 405)) return undefined;
    if (!res.ok) throw new Error(path.split('?')[0] + ': HTTP ' + res.status);
    return res.json();
  }

  async function poll() {
    clearTimeout(st.timer);
    if (st.waitingForToken || st.busy) return;
    st.busy = true;
    const started = performance.now();
    try {
      const [reps, ev] = await Promise.all([
        api('/admin/replicas'),
        api('/admin/events?since=' + st.eventsSince),
      ]);
      if (st.config === null || reps.generation !== st.configGeneration) {
        st.config = await api('/admin/config');
        st.configGeneration = reps.generation;
      }
      await pollRollouts(started);
      await pollTenants(started);
      await pollFleet(started);
      const now = performance.now();
      ingest(reps.replicas || [], now);
      render(reps, now);
      addEvents((ev && ev.events) || []);
      st.polls += 1;
      st.lastOk = Date.now();
      document.body.dataset.polls = String(st.polls);
      setConn('live', 'live · ' + clock(st.lastOk));
    } catch (e) {
      if (e instanceof AuthError) {
        askToken(Boolean(st.token));
        return;
      }
      setConn('error', 'cannot reach the admin API: ' + e.message);
    } finally {
      st.busy = false;
    }
    const every = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    st.timer = setTimeout(poll, Math.max(100, every - (performance.now() - started)));
  }

  async function pollRollouts(now) {
    if (st.rollouts === null && now < st.rolloutsRetryAt) return;
    const data = await api('/admin/rollouts', true);
    if (data === undefined) {
      st.rollouts = null;
      st.rolloutsRetryAt = now + ROLLOUTS_RETRY_MS;
    } else {
      st.rollouts = normalizeRollouts(data);
    }
  }

  // `GET /admin/costs`' `by_tenant`: `{ name: { requests, input_tokens, output_tokens,
  // spend_today, spend_this_month, limits: { daily_budget_usd, monthly_budget_usd, ... },
  // by_key: { id: { same, limits } } } }`. Rebuilt whole: a few rows per tenant.
  async function pollTenants(now) {
    if (now < st.tenantsAt) return;
    st.tenantsAt = now + TENANTS_POLL_MS;
    const costs = await api('/admin/costs', true);
    const byTenant = (costs && costs.by_tenant) || {};
    const names = Object.keys(byTenant).sort();
    $('tenants-panel').hidden = names.length === 0;
    const rows = [];
    for (const name of names) {
      const t = byTenant[name];
      rows.push(tenantRow(name, name, '', t));
      const keys = t.by_key || {};
      for (const k of Object.keys(keys).sort()) rows.push(tenantRow(name, '· ' + k, k, keys[k]));
    }
    $('tenant-rows').replaceChildren(...rows);
  }

  // `GET /admin/fleet`: `{ mode, self, instances: [{ id, version, revision, hash,
  // data_addr, admin_addr, last_refusal, degraded, degraded_reason }], error }`.
  // Shown in etcd mode: one row per live instance; a refusal is marked, so
  // an instance out of step is seen fleet-wide.
  async function pollFleet(now) {
    if (now < st.fleetAt) return;
    st.fleetAt = now + TENANTS_POLL_MS;
    const fleet = await api('/admin/fleet', true);
    const etcd = !!fleet && fleet.mode === 'etcd';
    $('fleet-panel').hidden = !etcd;
    if (!etcd) return;
    const list = (fleet.instances || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    const self = fleet.self || {};
    setText($('fleet-note'), fleet.error
      ? 'etcd unreachable from this instance: ' + fleet.error
      : list.length + ' live · prefix ' + (fleet.prefix || '') + (self.degraded ? ' · this instance degraded' : ''));
    $('fleet-rows').replaceChildren(...list.map((i) => fleetRow(i, self.id)));
  }

  // Revisions differ between healthy instances (each confirms the store's
  // revision when it next writes its status), so only a refusal or a
  // degraded instance is marked; `switchyard fleet apply` waits for the rest.
  function fleetRow(i, selfId) {
    const tr = el('tr', i.id === selfId ? 'fleet-self' : '');
    const refusal = i.last_refusal;
    let state = 'serving';
    if (i.degraded) state = 'degraded' + (i.degraded_reason ? ': ' + i.degraded_reason : '');
    else if (refusal) state = 'refused r' + refusal.revision + ': ' +
      (refusal.errors || []).map((e) => (e.path ? e.path + ' ' : '') + e.message).join('; ');
    tr.append(
      el('td', '', i.id),
      el('td', 'num', String(i.revision || 0)),
      el('td', 'mono', (i.hash || '').slice(0, 12)),
      el('td', '', i.data_addr || ''),
      el('td', '', i.version || ''),
      el('td', state === 'serving' ? 'ok' : 'warn', state),
    );
    return tr;
  }

  function tenantRow(tenant, label, key, f) {
    const tr = el('tr', key ? 'tenant-key' : 'tenant');
    tr.dataset.tenant = tenant;
    if (key) tr.dataset.key = key;
    const limits = f.limits || {};
    const tokens = (f.input_tokens || 0) + (f.output_tokens || 0);
    tr.append(
      el('td', null, label),
      el('td', 'num', String(f.requests || 0)),
      el('td', 'num', String(tokens)),
      spendCell(f.spend_today, limits.daily_budget_usd),
      spendCell(f.spend_this_month, limits.monthly_budget_usd),
    );
    return tr;
  }

  function spendCell(spent, budget) {
    const td = el('td', 'spend');
    const usd = (v) => '$' + (v || 0).toFixed(v >= 1 ? 2 : 4);
    td.append(el('span', null, budget == null ? usd(spent) : usd(spent) + ' / ' + usd(budget)));
    if (budget != null) {
      const { b, fill } = bar();
      setBar(fill, budget > 0 ? spent / budget : 1);
      td.append(b);
    }
    return td;
  }

  // `GET /admin/rollouts`: `{ generation, groups: [{ group, versions: [{name, weight}],
  // stable, weights_overridden, rollout: null | { spec: {canary, baseline, steps: [%...]},
  // phase, reason?, step (index), percent, canary: figures, baseline: figures } }] }`.
  function normalizeRollouts(data) {
    const out = new Map();
    const list = Array.isArray(data) ? data : (data && (data.groups || data.rollouts)) || [];
    for (const it of Array.isArray(list) ? list : []) {
      if (!it || typeof it !== 'object') continue;
      const model = it.group || it.model || it.name;
      if (!model) continue;
      const versions = Array.isArray(it.versions)
        ? it.versions.map((v) => ({ name: String(v.name ?? '?'), weight: Number(v.weight ?? 0) }))
        : null;
      const r = it.rollout && typeof it.rollout === 'object' ? it.rollout : null;
      const spec = (r && r.spec) || {};
      out.set(String(model), {
        versions,
        stable: it.stable ?? null,
        overridden: Boolean(it.weights_overridden),
        rollout: r && {
          phase: String(r.phase ?? r.state ?? 'rollout'),
          reason: r.reason ?? null,
          step: Number.isFinite(r.step) ? r.step : null,
          steps: Array.isArray(spec.steps) ? spec.steps.length : null,
          percent: r.percent ?? null,
          canaryVersion: spec.canary ?? null,
          baselineVersion: spec.baseline ?? null,
          canary: r.canary && typeof r.canary === 'object' ? r.canary : null,
          baseline: r.baseline && typeof r.baseline === 'object' ? r.baseline : null,
        },
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- numbers

  function delta(now, before) {
    return now >= before ? now - before : now; // a counter that restarted (replica URL changed)
  }

  function ingest(replicas, now) {
    const byId = new Map(replicas.map((r) => [r.id, { requests: r.requests, errors: r.errors }]));
    const prev = st.samples[st.samples.length - 1];
    st.samples.push({ t: now, byId });
    while (st.samples.length > 2 && now - st.samples[1].t > WINDOW_MS) st.samples.shift();
    if (!prev) return;
    const dt = Math.max(0.05, (now - prev.t) / 1000);
    let reqs = 0, errs = 0, latSum = 0, latWeight = 0, latAny = 0, latN = 0;
    for (const r of replicas) {
      const p = prev.byId.get(r.id);
      const dReq = p ? delta(r.requests, p.requests) : 0;
      const dErr = p ? delta(r.errors, p.errors) : 0;
      reqs += dReq;
      errs += dErr;
      push(rowSeriesOf(r.id), dReq / dt, ROW_HISTORY);
      if (r.ewma_latency_ms != null) {
        latAny += r.ewma_latency_ms;
        latN += 1;
        if (dReq > 0) {
          latSum += r.ewma_latency_ms * dReq;
          latWeight += dReq;
        }
      }
    }
    push(st.series.rps, reqs / dt, HISTORY);
    push(st.series.err, errs / dt, HISTORY);
    const lat = latWeight > 0 ? latSum / latWeight : latN > 0 ? latAny / latN : null;
    push(st.series.lat, lat, HISTORY);
  }

  function rowSeriesOf(id) {
    if (!st.rowSeries.has(id)) st.rowSeries.set(id, []);
    return st.rowSeries.get(id);
  }

  function push(arr, v, max) {
    arr.push(v);
    if (arr.length > max) arr.splice(0, arr.length - max);
  }

  // Requests a replica took over the window (oldest kept sample to now), and the window's length.
  function windowed(id) {
    const first = st.samples[0];
    const last = st.samples[st.samples.length - 1];
    if (!first || first === last) return { d: 0, secs: 0 };
    const a = first.byId.get(id);
    const b = last.byId.get(id);
    if (!a || !b) return { d: 0, secs: 0 };
    return { d: delta(b.requests, a.requests), secs: (last.t - first.t) / 1000 };
  }

  function recent(arr, n) {
    const xs = arr.slice(-n).filter((v) => v != null);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  }

  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const fmtRate = (n) => (n == null ? '–' : n >= 100 ? fmtInt(n) : n.toFixed(1));
  const fmtMs = (n) => (n == null ? '–' : n < 10 ? n.toFixed(1) : fmtInt(n));
  const fmtPct = (n) => (n == null ? '–' : n >= 10 || n === 0 ? Math.round(n) + '%' : n.toFixed(1) + '%');
  const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function setText(e, text) {
    const t = String(text);
    if (e.textContent !== t) e.textContent = t;
  }

  function setBar(fill, fraction) {
    const f = Math.max(0, Math.min(1, fraction || 0));
    fill.style.width = (f * 100).toFixed(1) + '%';
    fill.classList.toggle('hot', f >= 0.8 && f < 1);
    fill.classList.toggle('full', f >= 1);
  }

  function bar(extra) {
    const b = el('div', 'bar' + (extra ? ' ' + extra : ''));
    const fill = el('i');
    b.append(fill);
    return { b, fill };
  }

  function setConn(state, text) {
    document.body.dataset.state = state;
    setText($('conn-text'), text);
    $('forget').hidden = !st.token;
  }

  // ---------------------------------------------------------------- rendering

  function render(reps, now) {
    const replicas = reps.replicas || [];
    const cfg = (st.config && st.config.config) || {};
    setText($('m-generation'), reps.generation ?? '–');
    setText($('m-hash'), st.config && st.config.hash ? String(st.config.hash).slice(0, 12) : '–');
    setText($('m-replicas'), replicas.length);
    setText($('m-groups'), (cfg.models || []).length);
    renderTiles(replicas);
    renderTable(replicas, cfg, now);
    renderGroups(replicas, cfg);
    drawSparks();
  }

  function renderTiles(replicas) {
    const rps = recent(st.series.rps, 3);
    const err = recent(st.series.err, 3);
    setText($('t-rps'), fmtRate(rps));
    setText($('t-lat'), fmtMs(recent(st.series.lat, 3)));
    setText($('t-err'), fmtRate(err));
    setText($('t-errpct'), rps ? fmtPct((100 * (err || 0)) / rps) + ' of requests' : '');
    let inflight = 0, capacity = 0;
    const health = { healthy: 0, probing: 0, ejected: 0, down: 0 };
    for (const r of replicas) {
      inflight += r.in_flight;
      capacity += r.max_concurrency;
      const s = healthState(r);
      health[s] = (health[s] || 0) + 1;
    }
    setText($('t-inflight'), fmtInt(inflight));
    setText($('t-capacity'), '/ ' + fmtInt(capacity));
    setBar($('t-inflight-bar'), capacity ? inflight / capacity : 0);
    setText($('t-util'), capacity ? fmtPct((100 * inflight) / capacity) + ' of all slots' : '');
    setText($('h-healthy'), health.healthy);
    setText($('h-probing'), health.probing);
    setText($('h-ejected'), health.ejected + health.down);
  }

  function healthState(r) {
    const s = r.health && typeof r.health === 'object' ? r.health.state : r.health;
    return s === 'ejected' || s === 'probing' || s === 'down' ? s : 'healthy';
  }

  // Clouds in the order their first replica appears in the config.
  function byCloud(replicas) {
    const groups = new Map();
    for (const r of replicas) {
      if (!groups.has(r.cloud)) groups.set(r.cloud, []);
      groups.get(r.cloud).push(r);
    }
    return groups;
  }

  function renderTable(replicas, cfg, now) {
    const groups = byCloud(replicas);
    const structure = [...groups].map(([c, rs]) => c + ':' + rs.map((r) => r.id).join(',')).join('|');
    if (structure !== st.structure) buildTable(groups, cfg);
    st.structure = structure;
    $('no-replicas').hidden = replicas.length > 0;

    const tiers = costTiers(replicas);
    const modelTotals = new Map();
    let total = 0;
    const win = new Map();
    for (const r of replicas) {
      const w = windowed(r.id);
      win.set(r.id, w);
      modelTotals.set(r.model, (modelTotals.get(r.model) || 0) + w.d);
      total += w.d;
    }
    const summary = (rs) => {
      let d = 0, secs = 0, inflight = 0, out = 0;
      for (const r of rs) {
        d += win.get(r.id).d;
        secs = Math.max(secs, win.get(r.id).secs);
        inflight += r.in_flight || 0;
        const h = healthState(r);
        if (h !== 'healthy' || r.cordoned) out += 1;
      }
      const rate = secs ? d / secs : 0;
      return fmtRate(rate) + ' req/s · ' + (total ? fmtPct((100 * d) / total) : '–') + ' of traffic · ' +
        inflight + ' in flight' + (out ? ' · ' + out + ' out of rotation' : '');
    };
    for (const [cloud, rs] of groups) {
      setText(st.cloudRows.get(cloud), summary(rs));
      for (const [model, ms] of byModel(rs)) {
        const cell = st.modelRows.get(cloud + '|' + model);
        if (cell) setText(cell, summary(ms));
      }
    }
    for (const r of replicas) {
      const c = st.rows.get(r.id);
      if (c) updateRow(c, r, win.get(r.id), modelTotals.get(r.model) || 0, tiers, now);
    }
  }

  // Model groups of one cloud, in the order their first replica appears.
  function byModel(replicas) {
    const groups = new Map();
    for (const r of replicas) {
      if (!groups.has(r.model)) groups.set(r.model, []);
      groups.get(r.model).push(r);
    }
    return groups;
  }

  // Past this many replicas a cloud starts folded to its model groups, and a
  // model group to its summary line: a fleet of hundreds fits the screen.
  const FOLD_AT = 16;

  function groupRow(cls, key, name, meta, level) {
    const tr = el('tr', cls);
    tr.dataset.key = key;
    const td = el('td');
    td.colSpan = 11;
    const caret = el('span', 'caret', st.collapsed.has(key) ? '▸' : '▾');
    const stat = el('span', 'cstat');
    td.append(caret, el('span', 'cname', name), el('span', 'cmeta', meta), stat);
    tr.append(td);
    tr.tabIndex = 0;
    tr.setAttribute('role', 'button');
    tr.setAttribute('aria-expanded', String(!st.collapsed.has(key)));
    const toggle = () => {
      if (st.collapsed.has(key)) st.collapsed.delete(key);
      else st.collapsed.add(key);
      applyFolding();
    };
    tr.addEventListener('click', toggle);
    tr.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); }
    });
    tr.dataset.level = String(level);
    return { tr, stat, caret };
  }

  // Shows and hides rows after a fold changed (no rebuild, no refetch).
  function applyFolding() {
    for (const tr of $('replica-rows').children) {
      const cloud = tr.dataset.cloud;
      const model = tr.dataset.model;
      let hidden = false;
      if (tr.classList.contains('model')) hidden = st.collapsed.has(cloud);
      if (tr.classList.contains('replica')) {
        hidden = st.collapsed.has(cloud) || (model != null && st.collapsed.has(cloud + '|' + model));
      }
      tr.hidden = hidden;
      const key = tr.dataset.key;
      if (key != null) {
        const open = !st.collapsed.has(key);
        tr.setAttribute('aria-expanded', String(open));
        const caret = tr.querySelector('.caret');
        if (caret) caret.textContent = open ? '▾' : '▸';
      }
    }
  }

  function buildTable(groups, cfg) {
    const body = $('replica-rows');
    body.replaceChildren();
    st.rows.clear();
    st.cloudRows.clear();
    st.modelRows.clear();
    const clouds = cfg.clouds || {};
    const big = [...groups.values()].reduce((n, rs) => n + rs.length, 0) > FOLD_AT;
    for (const [cloud, rs] of groups) {
      const models = byModel(rs);
      if (!st.folded && big) {
        // A large fleet opens folded: clouds to their model groups, big
        // model groups to their summary.
        if (rs.length > FOLD_AT) st.collapsed.add(cloud);
        for (const [model, ms] of models) if (ms.length > FOLD_AT / 2) st.collapsed.add(cloud + '|' + model);
      }
      const info = clouds[cloud] || {};
      const meta = [info.provider || rs[0].provider, info.region, rs.length + (rs.length === 1 ? ' replica' : ' replicas')]
        .filter(Boolean).join(' · ');
      const c = groupRow('cloud', cloud, cloud, meta, 0);
      c.tr.dataset.cloud = cloud;
      body.append(c.tr);
      st.cloudRows.set(cloud, c.stat);
      // A cloud with one model group and few replicas lists them directly.
      const sub = models.size > 1 || rs.length > FOLD_AT;
      for (const [model, ms] of models) {
        if (sub) {
          const key = cloud + '|' + model;
          const m = groupRow('model', key, model, ms.length + (ms.length === 1 ? ' replica' : ' replicas'), 1);
          m.tr.dataset.cloud = cloud;
          m.tr.dataset.model = model;
          body.append(m.tr);
          st.modelRows.set(key, m.stat);
        }
        for (const r of ms) {
          const tr = buildRow(r);
          tr.dataset.cloud = cloud;
          if (sub) tr.dataset.model = model;
          body.append(tr);
        }
      }
    }
    st.folded = true;
    applyFolding();
  }

  function buildRow(r) {
    const tr = el('tr', 'replica');
    tr.dataset.id = r.id;
    const td = (cls) => {
      const t = el('td', cls);
      tr.append(t);
      return t;
    };
    const idCell = td('c-id');
    // Membership is fixed for an id: a discovered member names its template.
    const via = r.membership && r.membership !== 'config' ? ' · ' + r.membership + ' via ' + r.template : '';
    idCell.append(el('span', 'rid', r.id), el('span', 'rsub', r.provider + ' · ' + r.protocol + via));
    const model = td('c-model');
    model.append(el('span', 'mono', r.model), el('span', 'chip', r.version));
    const health = td('c-health');
    const pill = el('span', 'pill');
    const countdown = el('span', 'countdown');
    const fails = el('span', 'rsub');
    health.append(pill, countdown, fails);
    const inflight = td('c-inflight');
    const ib = bar();
    const iv = el('span', 'v');
    const icell = el('div', 'barcell');
    icell.append(ib.b, iv);
    inflight.append(icell);
    const lat = td('num c-latency mono');
    const rps = td('num c-rps');
    const rpsText = el('span', 'mono');
    const spark = document.createElementNS(SVG_NS, 'svg');
    spark.setAttribute('class', 'rowspark');
    spark.setAttribute('viewBox', '0 0 56 16');
    spark.setAttribute('preserveAspectRatio', 'none');
    const path = document.createElementNS(SVG_NS, 'path');
    spark.append(path);
    rps.append(rpsText, spark);
    const share = td('c-share');
    const sb = bar('share');
    const sv = el('span', 'v');
    const scell = el('div', 'barcell');
    scell.append(sb.b, sv);
    share.append(scell);
    const requests = td('num c-requests mono');
    const errors = td('num c-errors mono');
    const ejections = td('num c-ejections');
    const ejCount = el('span', 'mono');
    const ejWhy = el('span', 'rsub');
    ejections.append(ejCount, ejWhy);
    const cost = td('c-cost');
    const tier = el('span', 'mono');
    const price = el('span', 'rsub');
    cost.append(tier, price);
    st.rows.set(r.id, {
      tr, pill, countdown, fails, ifill: ib.fill, iv, lat, rpsText, path,
      sfill: sb.fill, sv, requests, errors, ejCount, ejWhy, tier, price,
    });
    return tr;
  }

  function updateRow(c, r, win, modelTotal, tiers, now) {
    const state = healthState(r);
    c.tr.classList.toggle('is-ejected', state === 'ejected' || state === 'down');
    c.tr.classList.toggle('is-probing', state === 'probing');
    c.tr.dataset.health = state;
    c.pill.className = 'pill ' + state;
    setText(c.pill, state);
    if (state === 'ejected' && r.ejection_ends_in_ms != null) {
      st.deadlines.set(r.id, now + r.ejection_ends_in_ms);
    } else {
      st.deadlines.delete(r.id);
    }
    tickCountdown(r.id, c.countdown);
    const notes = [];
    if (r.consecutive_failures > 0) notes.push(r.consecutive_failures + ' failed in a row');
    const active = r.active_check;
    if (active && active.consecutive_failed > 0) notes.push('health check failed ×' + active.consecutive_failed);
    else if (active && active.down) notes.push('health check: ' + (active.consecutive_ok || 0) + ' ok');
    if (r.slow_start_ramp != null) notes.push('slow start ' + fmtPct(100 * r.slow_start_ramp));
    // Readiness is its own state, apart from health: a healthy replica may
    // be cordoned or waiting for its first good probe.
    if (r.readiness && r.readiness !== 'ready' && r.readiness !== 'warming') notes.push(r.readiness.replace('_', ' '));
    setText(c.fails, notes.join(' · '));
    c.fails.className = 'rsub' + (notes.length ? ' warn' : '');

    setBar(c.ifill, r.max_concurrency ? r.in_flight / r.max_concurrency : 0);
    setText(c.iv, r.in_flight + '/' + r.max_concurrency);
    setText(c.lat, r.ewma_latency_ms == null ? '–' : fmtMs(r.ewma_latency_ms) + ' ms');

    const rate = win.secs ? win.d / win.secs : 0;
    setText(c.rpsText, fmtRate(rate));
    c.path.setAttribute('d', sparkPath(st.rowSeries.get(r.id) || [], 56, 16));
    setBar(c.sfill, modelTotal ? win.d / modelTotal : 0);
    c.sfill.classList.remove('hot', 'full');
    setText(c.sv, modelTotal ? fmtPct((100 * win.d) / modelTotal) : '–');

    setText(c.requests, fmtInt(r.requests));
    setText(c.errors, fmtInt(r.errors));
    c.errors.classList.toggle('bad', r.requests > 0 && r.errors / r.requests > 0.05);
    setText(c.ejCount, fmtInt(r.ejections));
    setText(c.ejWhy, r.last_ejection_reason ? String(r.last_ejection_reason).replace(/_/g, ' ') : '');

    const cost = r.cost || {};
    const sum = (cost.input_per_1k || 0) + (cost.output_per_1k || 0);
    setText(c.tier, sum > 0 ? '$'.repeat(tiers.get(sum) || 1) : 'n/a');
    setText(c.price, sum > 0 ? perMillion(cost.input_per_1k) + ' / ' + perMillion(cost.output_per_1k) + ' per 1M' : '');
    c.price.title = 'USD per million tokens, input / output';
  }

  const perMillion = (per1k) => '$' + (1000 * (per1k || 0)).toFixed(2);

  // Price points, cheapest first: $, $$, $$$ ...
  function costTiers(replicas) {
    const sums = [...new Set(replicas
      .map((r) => ((r.cost && r.cost.input_per_1k) || 0) + ((r.cost && r.cost.output_per_1k) || 0))
      .filter((s) => s > 0))].sort((a, b) => a - b);
    return new Map(sums.map((s, i) => [s, Math.min(i + 1, 4)]));
  }

  function tickCountdown(id, span) {
    const until = st.deadlines.get(id);
    if (until === undefined) {
      setText(span, '');
      return;
    }
    const left = Math.max(0, until - performance.now());
    setText(span, (left / 1000).toFixed(1) + ' s');
  }

  function renderGroups(replicas, cfg) {
    const root = $('groups');
    const models = cfg.models || [];
    setText($('rollouts-note'), st.rollouts ? 'weights from /admin/rollouts' : 'weights from config');
    const seen = new Map(); // model -> Map(version -> requests in window)
    for (const r of replicas) {
      if (!seen.has(r.model)) seen.set(r.model, new Map());
      const m = seen.get(r.model);
      m.set(r.version, (m.get(r.version) || 0) + windowed(r.id).d);
    }
    root.replaceChildren(...models.map((g) => groupBlock(g, seen.get(g.name) || new Map())));
  }

  function groupBlock(g, seen) {
    const box = el('div', 'group');
    box.dataset.model = g.name;
    const rollout = st.rollouts && st.rollouts.get(g.name);
    const versions = (rollout && rollout.versions) || (g.versions || []).map((v) => ({ name: v.name, weight: v.weight }));
    const head = el('div', 'ghead');
    head.append(el('span', 'gname', g.name));
    if (g.fallbacks && g.fallbacks.length) head.append(el('span', 'rsub', '→ ' + g.fallbacks.join(', ')));
    const routing = g.routing || {};
    let policy = routing.policy ? String(routing.policy).replace(/_/g, ' ') : '';
    if (routing.policy === 'cost_aware' && routing.spill_at != null) policy += ' · spill at ' + Math.round(routing.spill_at * 100) + '%';
    head.append(el('span', 'gpolicy', policy));
    box.append(head);

    const totalWeight = versions.reduce((a, v) => a + (v.weight || 0), 0);
    const totalSeen = [...seen.values()].reduce((a, b) => a + b, 0);
    const stack = el('div', 'stack');
    stack.title = 'configured weights';
    const observed = el('div', 'stack observed');
    observed.title = 'observed share of requests, last 10 s';
    const legend = el('div', 'glegend');
    versions.forEach((v, i) => {
      const w = totalWeight ? v.weight / totalWeight : 0;
      const seg = el('span', 'v' + (i % 6), v.weight > 0 ? v.name + ' ' + fmtPct(100 * w) : '');
      seg.style.width = (100 * w).toFixed(2) + '%';
      stack.append(seg);
      const o = totalSeen ? (seen.get(v.name) || 0) / totalSeen : 0;
      const oseg = el('span', 'v' + (i % 6));
      oseg.style.width = (100 * o).toFixed(2) + '%';
      observed.append(oseg);
      const item = el('span');
      item.append(el('b', null, v.name), document.createTextNode(
        ' weight ' + (v.weight ?? 0) + ' · seen ' + (totalSeen ? fmtPct(100 * o) : '–')));
      legend.append(item);
    });
    box.append(stack, observed, legend);
    if (rollout && ((rollout.stable && versions.length > 1) || rollout.overridden)) {
      const notes = el('div', 'glegend');
      if (rollout.stable && versions.length > 1) notes.append(el('span', null, 'stable ' + rollout.stable));
      if (rollout.overridden) notes.append(el('span', 'warn', 'weights set by an operator'));
      box.append(notes);
    }
    if (rollout && rollout.rollout) box.append(...rolloutLines(rollout.rollout));
    return box;
  }

  function rolloutLines(r) {
    const line = el('div', 'rollout');
    const phase = r.phase.replace(/_/g, ' ');
    const cls = /roll.?back|abort|fail/i.test(phase) ? 'pill ejected'
      : /overrid|pause|hold/i.test(phase) ? 'pill probing' : 'pill healthy';
    line.append(el('span', cls, phase));
    const parts = [];
    if (r.step != null) parts.push('step ' + (r.step + 1) + (r.steps ? ' of ' + r.steps : ''));
    if (r.canaryVersion) parts.push(r.canaryVersion + (r.percent != null ? ' at ' + r.percent + '%' : ''));
    line.append(el('span', 'muted', parts.join(' · ')));
    if (r.steps && r.step != null) {
      const b = bar();
      setBar(b.fill, /complet/i.test(phase) ? 1 : (r.step + 1) / r.steps);
      b.fill.classList.remove('hot', 'full');
      line.append(b.b);
    }
    const lines = [line];
    if (r.canary && r.baseline) {
      const fig = (f) => fmtPct(100 * (f.error_rate || 0)) + ' err' + (f.p95_ms != null ? ' · p95 ' + fmtMs(f.p95_ms) + ' ms' : '')
        + ' · ' + fmtInt(f.requests || 0) + ' req';
      lines.push(el('div', 'glegend', (r.canaryVersion || 'canary') + ': ' + fig(r.canary)));
      lines.push(el('div', 'glegend', (r.baselineVersion || 'baseline') + ': ' + fig(r.baseline)));
    }
    if (r.reason) lines.push(el('div', 'glegend bad', String(r.reason)));
    return lines;
  }

  // ---------------------------------------------------------------- events

  function eventClass(kind) {
    if (/recover|cleared|healthy|promot/.test(kind)) return 'k-ok';
    if (/eject|reject|error|fail/.test(kind)) return 'k-bad';
    if (/rollback|fault|cool/.test(kind)) return 'k-warn';
    if (/rollout|step|weight/.test(kind)) return 'k-roll';
    return 'k-info';
  }

  function addEvents(events) {
    const list = $('events');
    for (const e of events) {
      st.eventsSince = Math.max(st.eventsSince, e.seq || 0);
      const li = el('li', st.eventsLoaded ? 'fresh' : null);
      li.dataset.seq = e.seq;
      const when = el('time', null, e.at_ms ? clock(e.at_ms) : '');
      if (e.at_ms) when.dateTime = new Date(e.at_ms).toISOString();
      const what = el('div');
      const kind = String(e.kind || 'event');
      what.append(el('span', 'ek ' + eventClass(kind), kind.replace(/_/g, ' ')), el('span', 'es', e.subject || ''));
      li.append(when, what, el('div', 'ed', e.detail || ''));
      list.prepend(li);
    }
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    st.eventsLoaded = true;
    $('no-events').hidden = list.children.length > 0;
  }

  // ---------------------------------------------------------------- sparklines

  function sparkPath(values, w, h) {
    const xs = values.slice(-ROW_HISTORY);
    if (xs.length < 2) return '';
    const max = Math.max(1e-9, ...xs);
    const step = w / (ROW_HISTORY - 1);
    const x0 = w - step * (xs.length - 1);
    return xs.map((v, i) => (i ? 'L' : 'M') + (x0 + i * step).toFixed(1) + ' ' + (h - 1 - (v / max) * (h - 2)).toFixed(1)).join('');
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawSparks() {
    drawSpark($('s-rps'), st.series.rps, cssVar('--accent'), (v) => fmtRate(v) + ' req/s');
    drawSpark($('s-lat'), st.series.lat, cssVar('--info'), (v) => fmtMs(v) + ' ms');
    drawSpark($('s-err'), st.series.err, cssVar('--bad'), (v) => fmtRate(v) + '/s');
  }

  function drawSpark(canvas, values, color, label) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 240, h = canvas.clientHeight || 44;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = cssVar('--line');
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, h - 0.5);
    g.lineTo(w, h - 0.5);
    g.stroke();
    const pts = values.map((v, i) => [i, v]).filter(([, v]) => v != null);
    if (pts.length < 2) return;
    const max = Math.max(1e-9, ...pts.map(([, v]) => v)) * 1.15;
    const step = w / (HISTORY - 1);
    const x = (i) => w - step * (values.length - 1 - i);
    const y = (v) => h - 2 - (v / max) * (h - 14);
    g.beginPath();
    pts.forEach(([i, v], k) => (k ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.stroke();
    g.lineTo(x(pts[pts.length - 1][0]), h);
    g.lineTo(x(pts[0][0]), h);
    g.closePath();
    g.globalAlpha = 0.14;
    g.fillStyle = color;
    g.fill();
    g.globalAlpha = 1;
    const [li, lv] = pts[pts.length - 1];
    g.beginPath();
    g.arc(x(li) - 2, y(lv), 2.2, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = cssVar('--faint');
    g.font = '10px ' + cssVar('--sans');
    g.fillText('max ' + label(max / 1.15), 2, 10);
  }

  // ---------------------------------------------------------------- token prompt

  function askToken(rejected) {
    st.waitingForToken = true;
    setConn('auth', 'admin token required');
    $('auth').hidden = false;
    $('auth-error').hidden = !rejected;
    $('auth-token').focus();
  }

  function onTokenSubmit(ev) {
    ev.preventDefault();
    const input = $('auth-token');
    const token = input.value.trim();
    if (!token) return;
    input.value = '';
    st.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('auth').hidden = true;
    st.waitingForToken = false;
    setConn('connecting', 'connecting…');
    poll();
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    st.token = '';
    st.waitingForToken = false;
    poll();
  }

  // ---------------------------------------------------------------- start

  function everyQuarterSecond() {
    for (const [id, c] of st.rows) tickCountdown(id, c.countdown);
    if (document.body.dataset.state === 'live' && Date.now() - st.lastOk > 3500) {
      setConn('stale', 'no answer for ' + Math.round((Date.now() - st.lastOk) / 1000) + ' s');
    }
  }

  function start() {
    $('auth-form').addEventListener('submit', onTokenSubmit);
    $('forget').addEventListener('click', forgetToken);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && !st.waitingForToken) poll();
    });
    setInterval(everyQuarterSecond, 250);
    poll();
  }

  start();
})();
