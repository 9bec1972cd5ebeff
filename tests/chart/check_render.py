#!/usr/bin/env python3
"""Structure checks of one rendered joingate chart (tests/chart/run.sh).

    check_render.py RENDERED.yaml EXPECT.json OUTDIR

EXPECT (JSON): release, namespace, fullname, replicas, version, cert_manager (bool),
issuer (optional external issuer name), tls_secret (when not cert-manager), monitoring
({"annotations","service_monitor","rule","dashboard"}: bools), reloader (bool),
persistence (bool), roll_on_config_change (bool), wait_timeout ("" or a duration),
config ({"admission.policy": "skew", ...}: dotted keys and the values every member's TOML
must hold).

Writes, for `joingate check-config`:
  OUTDIR/config/<member>.toml   every member's file, /etc/joingate/tls rewritten to OUTDIR/tls
  OUTDIR/certs.txt              "DIR MEMBER SAN..." per certificate directory the configs use
  OUTDIR/rules.yml              the PrometheusRule's groups (when rendered)
  OUTDIR/dashboard.json         the dashboard (when rendered)
Prints every failed check and exits 1 if there was one.
"""
import json
import os
import re
import sys
import tomllib

import yaml

ADMIN_PATHS = {"/metrics", "/healthz", "/readyz", "/status", "/joingate/v1/version"}
JOINGATE_BIN = "/usr/local/bin/joingate"
TLS_MOUNT = "/etc/joingate/tls"

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def url_host_port(url):
    m = re.fullmatch(r"http://([^/]+?)/?", url)
    if not m:
        raise ValueError(f"not an http://host:port URL: {url}")
    return host_port(m.group(1))


def go_no_proxy_covers(no_proxy, host):
    """Whether Go's NO_PROXY (golang.org/x/net/http/httpproxy) would skip the proxy for host."""
    for e in (x.strip().lower() for x in no_proxy.split(",")):
        if not e:
            continue
        if e == "*":
            return True
        e = e.rsplit(":", 1)[0] if re.fullmatch(r".+:\d+", e) and not e.startswith("[") else e
        if e.startswith("*."):
            e = e[1:]
        if e.startswith("."):
            if host.endswith(e) or host == e[1:]:
                return True
        elif host == e or host.endswith("." + e):
            return True
    return False


def effective(pod_sc, c_sc, key):
    if key in (c_sc or {}):
        return c_sc[key]
    return (pod_sc or {}).get(key)


def main():
    rendered, expect_path, out = sys.argv[1:4]
    exp = json.load(open(expect_path))
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by = {}
    for d in docs:
        by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    ns = exp["namespace"]
    full = exp["fullname"]
    n = exp["replicas"]
    members = [f"{full}-{i}" for i in range(n)]
    headless = f"{full}-headless"
    for d in docs:
        check(d["metadata"].get("namespace") == ns or d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"),
              f"{d['kind']}/{d['metadata']['name']}: namespace {d['metadata'].get('namespace')!r}, want {ns!r}")

    sts = by.get("StatefulSet", {}).get(full)
    if not check(sts is not None, f"no StatefulSet {full}"):
        return
    spec = sts["spec"]
    tpl = spec["template"]
    pod = tpl["spec"]
    labels = tpl["metadata"].get("labels", {})
    check(spec["replicas"] == n, f"StatefulSet replicas {spec['replicas']}, want {n}")
    check(spec.get("podManagementPolicy") == "Parallel", "podManagementPolicy must be Parallel (members find each other before any is ready)")
    check(spec.get("updateStrategy", {}).get("type") == "RollingUpdate", "updateStrategy must be RollingUpdate")
    check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), "selector does not match the pod labels")
    check(spec.get("serviceName") == headless, f"serviceName {spec.get('serviceName')!r}, want {headless!r}")
    check(pod.get("enableServiceLinks") is False, "enableServiceLinks must be false (service env vars reach etcd as ETCD_* settings)")
    check(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken must be false")

    # ---- services
    svc = by.get("Service", {})
    hs = svc.get(headless)
    if check(hs is not None, f"no headless Service {headless}"):
        check(hs["spec"].get("clusterIP") == "None", "headless Service: clusterIP must be None")
        check(hs["spec"].get("publishNotReadyAddresses") is True,
              "headless Service: publishNotReadyAddresses must be true (peers resolve each other before they are ready)")
    client = svc.get(full)
    check(client is not None and not client["spec"].get("publishNotReadyAddresses"),
          f"client Service {full} must exist and list ready members only")
    for s in svc.values():
        sel = s["spec"].get("selector", {})
        check(sel and all(labels.get(k) == v for k, v in sel.items()), f"Service {s['metadata']['name']}: selector does not match the pods")

    # ---- containers and their order
    inits = pod.get("initContainers", [])
    ctrs = pod.get("containers", [])
    names = [c["name"] for c in inits]
    check(names == ["joingate", "joingate-wait"], f"initContainers {names}, want [joingate, joingate-wait]")
    if len(inits) < 2 or not ctrs:
        return
    jg, wait = inits[0], inits[1]
    check(jg.get("restartPolicy") == "Always", "joingate must be a native sidecar (restartPolicy: Always)")
    check(wait.get("restartPolicy") is None, "joingate-wait must be a plain init container (runs to completion before etcd)")
    check(ctrs[0]["name"] == "etcd", f"first container {ctrs[0]['name']!r}, want etcd")
    for c in ctrs:
        check("restartPolicy" not in c, f"container {c['name']}: restartPolicy is only for init containers")
    etcd = ctrs[0]
    reloader = next((c for c in ctrs if c["name"] == "reloader"), None)
    check((reloader is not None) == exp["reloader"], f"reloader container present={reloader is not None}, want {exp['reloader']}")

    for c in (jg, wait):
        check(c.get("command") == [JOINGATE_BIN], f"{c['name']}: command {c.get('command')}, want [{JOINGATE_BIN}]")
        check(c["image"] == jg["image"], f"{c['name']}: image {c['image']} differs from the sidecar's")
    args = jg.get("args", [])
    check(len(args) == 3 and args[:2] == ["run", "--config"], f"joingate args {args}, want run --config FILE")
    cfg_file = args[2] if len(args) == 3 else ""
    check("$(POD_NAME)" in cfg_file, f"joingate --config {cfg_file}: must select the member's own file with $(POD_NAME)")
    env = {e["name"]: e for e in jg.get("env", [])}
    check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
          "joingate: POD_NAME must come from metadata.name (for $(POD_NAME) in --config)")

    # ---- volumes and the ConfigMap
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in jg.get("volumeMounts", [])}
    cfg_dir = os.path.dirname(cfg_file)
    cfg_mount = next((m for m in mounts.values() if m["mountPath"] == cfg_dir), None)
    cm = None
    if check(cfg_mount is not None, f"no volume mounted at {cfg_dir} in the joingate container"):
        cm_name = vols[cfg_mount["name"]].get("configMap", {}).get("name")
        cm = by.get("ConfigMap", {}).get(cm_name)
        check(cm is not None, f"ConfigMap {cm_name} (mounted at {cfg_dir}) is not rendered")
    if cm is None:
        return
    keys = sorted(cm["data"])
    check(keys == sorted(f"{m}.toml" for m in members), f"ConfigMap keys {keys}, want <member>.toml for {members}")

    tls_mount = next((m for m in jg.get("volumeMounts", []) if m["mountPath"] == TLS_MOUNT), None)
    check(tls_mount is not None and tls_mount.get("readOnly"), f"joingate must mount the certificates read-only at {TLS_MOUNT}")

    # ---- ports of the sidecar
    jg_ports = {p["name"]: p["containerPort"] for p in jg.get("ports", [])}
    etcd_ports = {p["name"]: p["containerPort"] for p in etcd.get("ports", [])}
    all_ports = {**jg_ports, **etcd_ports}

    def probe_port(probe):
        p = probe["httpGet"]["port"]
        return all_ports.get(p) if isinstance(p, str) else p

    # ---- etcd
    eargs = {}
    for a in etcd.get("args", []):
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            eargs[k] = v
    eenv = {e["name"]: e.get("value") for e in etcd.get("env", [])}
    check(etcd.get("env") and any(e["name"] == "POD_NAME" and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
                                  for e in etcd["env"]), "etcd: POD_NAME must come from metadata.name")
    check(eargs.get("name") == "$(POD_NAME)", f"etcd --name {eargs.get('name')}, want $(POD_NAME)")

    out_cfg = os.path.join(out, "config")
    os.makedirs(out_cfg, exist_ok=True)
    cert_lines = []
    tls_dirs = set()
    configs = {}
    for m in members:
        text = cm["data"][f"{m}.toml"]
        check(not re.search(r"(?m)^[ \t]+$", text), f"{m}.toml has whitespace-only lines (kubectl would show it quoted)")
        try:
            c = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            check(False, f"{m}.toml is not TOML: {e}")
            continue
        configs[m] = c
        with open(os.path.join(out_cfg, f"{m}.toml"), "w") as f:
            f.write(text.replace(TLS_MOUNT, os.path.join(out, "tls")))

    peers_want = [f"{m}.{headless}.{ns}.svc:{{port}}" for m in members]
    for m, c in configs.items():
        where = f"{m}.toml"
        mem, inb, outb, clu, tls, adm = (c.get(k, {}) for k in ("member", "inbound", "outbound", "cluster", "tls", "admin"))
        check(mem.get("name") == m, f"{where}: member.name {mem.get('name')!r}, want {m!r}")
        check(mem.get("version") == exp["version"], f"{where}: member.version {mem.get('version')!r}, want {exp['version']!r}")
        in_host, in_port = host_port(inb["listen"])
        out_host, out_port = host_port(outb["listen"])
        ad_host, ad_port = host_port(adm["listen"])
        check(in_host == "0.0.0.0", f"{where}: inbound.listen {inb['listen']}: other members must reach it")
        check(out_host == "127.0.0.1", f"{where}: outbound.listen {outb['listen']}: the forward proxy belongs on loopback")
        check(ad_host == "0.0.0.0", f"{where}: admin.listen {adm['listen']}: kubelet probes and Prometheus must reach it")
        # cluster.peers and etcd's peer URLs
        want_peers = [p.format(port=in_port) for p in peers_want]
        check(clu.get("peers") == want_peers, f"{where}: cluster.peers {clu.get('peers')}, want {want_peers}")
        adv = eargs.get("initial-advertise-peer-urls", "")
        want_adv = f"http://$(POD_NAME).{headless}.{ns}.svc:{in_port}"
        check(adv == want_adv, f"etcd --initial-advertise-peer-urls {adv}, want {want_adv} (joingate inbound port {in_port})")
        own = adv.replace("$(POD_NAME)", m)
        check(own.removeprefix("http://") in (clu.get("peers") or []), f"{where}: the advertised {own} is not in cluster.peers")
        ic = eargs.get("initial-cluster", "")
        want_ic = ",".join(f"{x}=http://{p}" for x, p in zip(members, want_peers))
        check(ic == want_ic, f"etcd --initial-cluster {ic}, want {want_ic}")
        # etcd's own peer listener = member.peer, on loopback, on a port of its own
        check(eargs.get("listen-peer-urls") == mem.get("peer"), f"etcd --listen-peer-urls {eargs.get('listen-peer-urls')} != member.peer {mem.get('peer')}")
        ph, pp = url_host_port(mem["peer"])
        check(ph == "127.0.0.1", f"{where}: member.peer {mem['peer']}: etcd must listen for peers on loopback only")
        check(pp not in (in_port, out_port, ad_port), f"{where}: member.peer port {pp} collides with a joingate listener")
        # HTTP_PROXY = outbound
        for k in ("HTTP_PROXY", "http_proxy"):
            check(eenv.get(k) == f"http://{outb['listen']}", f"etcd {k}={eenv.get(k)!r}, want http://{outb['listen']} (outbound.listen)")
        for k in ("NO_PROXY", "no_proxy"):
            v = eenv.get(k) or ""
            for p in want_peers:
                check(not go_no_proxy_covers(v, host_port(p)[0]), f"etcd {k}={v!r} covers the peer {p}: its traffic would bypass joingate")
        for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            check(k not in eenv, f"etcd must not set {k}")
        # client
        if "client" in mem:
            ch, cp = url_host_port(mem["client"])
            lh, lp = url_host_port(eargs.get("listen-client-urls", "http://x:0"))
            check(cp == lp and lh in ("0.0.0.0", "127.0.0.1"), f"{where}: member.client {mem['client']} is not where etcd listens for clients ({eargs.get('listen-client-urls')})")
            check(etcd_ports.get("client") == cp, f"etcd client containerPort {etcd_ports.get('client')} != {cp}")
        # sidecar ports, probes, wait
        check(jg_ports.get("peer") == in_port, f"joingate containerPort peer {jg_ports.get('peer')} != inbound port {in_port}")
        check(jg_ports.get("admin") == ad_port, f"joingate containerPort admin {jg_ports.get('admin')} != admin port {ad_port}")
        for kind, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            pr = jg.get(kind)
            if check(pr and "httpGet" in pr, f"joingate has no {kind} httpGet"):
                check(pr["httpGet"]["path"] == path, f"joingate {kind} path {pr['httpGet']['path']}, want {path}")
                check(pr["httpGet"]["path"] in ADMIN_PATHS, f"joingate {kind} path {pr['httpGet']['path']} is not an admin path")
                check(probe_port(pr) == ad_port, f"joingate {kind} port {pr['httpGet']['port']} is not the admin port {ad_port}")
        wargs = wait.get("args", [])
        check(wargs[:3] == ["wait", "--admin", f"http://127.0.0.1:{ad_port}"], f"joingate-wait args {wargs}, want wait --admin http://127.0.0.1:{ad_port}")
        if exp.get("wait_timeout"):
            check(wargs[3:] == ["--timeout", exp["wait_timeout"]], f"joingate-wait args {wargs}: want --timeout {exp['wait_timeout']}")
        else:
            check(len(wargs) == 3, f"joingate-wait args {wargs}: no --timeout expected")
        if hs is not None:
            hp = {p["name"]: p for p in hs["spec"]["ports"]}
            check(hp.get("peer", {}).get("port") == in_port and hp["peer"].get("targetPort") in ("peer", in_port),
                  f"headless Service peer port {hp.get('peer')} must expose joingate inbound {in_port}")
            check(hp.get("admin", {}).get("targetPort") in ("admin", ad_port), "headless Service must expose the admin port (scraping)")
        # TLS files
        for k in ("cert", "key", "ca"):
            check(str(tls.get(k, "")).startswith(TLS_MOUNT + "/"), f"{where}: tls.{k} {tls.get(k)} is not under {TLS_MOUNT}")
        d = os.path.dirname(tls["cert"])
        check(os.path.dirname(tls["key"]) == d and os.path.dirname(tls["ca"]) == d, f"{where}: tls files in different directories")
        if exp["cert_manager"]:
            check(d == f"{TLS_MOUNT}/{m}", f"{where}: with cert-manager the member's files are under {TLS_MOUNT}/{m}, got {d}")
        else:
            check(d == TLS_MOUNT, f"{where}: tls files under {d}, want {TLS_MOUNT}")
        if d not in tls_dirs:
            tls_dirs.add(d)
            local = d.replace(TLS_MOUNT, os.path.join(out, "tls"))
            sans = [f"DNS:{host_port(p)[0]}" for p in (want_peers if not exp["cert_manager"] else [want_peers[members.index(m)]])]
            cert_lines.append(" ".join([local, m] + sans))
        # expected config values
        for dotted, want in exp.get("config", {}).items():
            cur = c
            for part in dotted.split("."):
                cur = cur.get(part) if isinstance(cur, dict) else None
            check(cur == want, f"{where}: {dotted} = {cur!r}, want {want!r}")
    with open(os.path.join(out, "certs.txt"), "w") as f:
        f.write("\n".join(cert_lines) + "\n")

    # ---- TLS sources
    tv = vols.get(tls_mount["name"]) if tls_mount else None
    certs = by.get("Certificate", {})
    if exp["cert_manager"]:
        srcs = (tv or {}).get("projected", {}).get("sources", [])
        secrets = {s["secret"]["name"]: s["secret"] for s in srcs if "secret" in s}
        for i, m in enumerate(members):
            cert = certs.get(f"{m}-peer")
            if not check(cert is not None, f"no Certificate {m}-peer"):
                continue
            cs = cert["spec"]
            host = f"{m}.{headless}.{ns}.svc"
            check(host in cs.get("dnsNames", []), f"Certificate {m}-peer: dnsNames {cs.get('dnsNames')} lack {host}")
            check({"server auth", "client auth"} <= set(cs.get("usages", [])), f"Certificate {m}-peer: needs server auth and client auth")
            sec = secrets.get(cs["secretName"])
            if check(sec is not None, f"Secret {cs['secretName']} is not projected into {TLS_MOUNT}"):
                items = {it["key"]: it["path"] for it in sec.get("items", [])}
                check(items == {"tls.crt": f"{m}/tls.crt", "tls.key": f"{m}/tls.key", "ca.crt": f"{m}/ca.crt"},
                      f"Secret {cs['secretName']}: items {items}, want tls.crt/tls.key/ca.crt under {m}/")
            ref = cs.get("issuerRef", {})
            if exp.get("issuer"):
                check(ref.get("name") == exp["issuer"], f"Certificate {m}-peer: issuer {ref}, want {exp['issuer']}")
            else:
                iss = by.get("Issuer", {}).get(ref.get("name"))
                check(iss is not None and "ca" in iss["spec"], f"Certificate {m}-peer: issuer {ref.get('name')} is not a rendered CA Issuer")
        check(len(certs) == n + (0 if exp.get("issuer") else 1), f"{len(certs)} Certificates, want {n} members" + ("" if exp.get("issuer") else " + the CA"))
    else:
        check(not certs and not by.get("Issuer"), "cert-manager objects rendered with tls.certManager.enabled=false")
        check((tv or {}).get("secret", {}).get("secretName") == exp["tls_secret"], f"TLS volume {tv}, want Secret {exp['tls_secret']}")

    # ---- security
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    uids = {}
    for c in inits + ctrs:
        sc = c.get("securityContext", {})
        nm = c["name"]
        check(effective(psc, sc, "runAsNonRoot") is True, f"{nm}: runAsNonRoot")
        check(sc.get("readOnlyRootFilesystem") is True, f"{nm}: readOnlyRootFilesystem must be true")
        check(sc.get("allowPrivilegeEscalation") is False, f"{nm}: allowPrivilegeEscalation must be false")
        check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{nm}: capabilities must drop ALL")
        check(not sc.get("capabilities", {}).get("add"), f"{nm}: adds capabilities")
        check(not sc.get("privileged"), f"{nm}: privileged")
        uid = effective(psc, sc, "runAsUser")
        check(isinstance(uid, int) and uid > 0, f"{nm}: runAsUser {uid!r} must be a non-zero number")
        uids[nm] = uid
    if reloader is not None:
        check(pod.get("shareProcessNamespace") is True, "the reloader needs shareProcessNamespace: true to signal joingate")
        check(uids.get("reloader") == uids.get("joingate"), "the reloader must run as joingate's user (to send it SIGHUP)")
        check(uids.get("etcd") != uids.get("joingate"), "etcd should run as a user of its own (the reloader can signal only joingate)")
        watch = {e["name"]: e.get("value") for e in reloader.get("env", [])}.get("JOINGATE_WATCH", "").split()
        check(set(watch) >= {cfg_dir, TLS_MOUNT}, f"reloader watches {watch}, want {cfg_dir} and {TLS_MOUNT}")
        rm = {m["mountPath"] for m in reloader.get("volumeMounts", [])}
        check(rm >= {cfg_dir, TLS_MOUNT}, f"reloader mounts {rm}: it must see what it watches")
    else:
        check(not pod.get("shareProcessNamespace"), "shareProcessNamespace without the reloader")

    # ---- data
    vct = spec.get("volumeClaimTemplates", [])
    if exp["persistence"]:
        check(len(vct) == 1 and vct[0]["metadata"]["name"] == "data", "volumeClaimTemplates must hold 'data'")
    else:
        check(not vct and "emptyDir" in vols.get("data", {}), "without persistence, data is an emptyDir")
    check(any(m["name"] == "data" and m["mountPath"] == "/var/lib/etcd" for m in etcd.get("volumeMounts", [])), "etcd must mount data at /var/lib/etcd")
    check(eargs.get("data-dir", "").startswith("/var/lib/etcd/"), "etcd --data-dir must be inside the data volume")

    # ---- annotations
    ann = tpl["metadata"].get("annotations", {})
    check(("checksum/config" in ann) == exp["roll_on_config_change"], f"checksum/config annotation present={'checksum/config' in ann}, want {exp['roll_on_config_change']}")
    mon = exp["monitoring"]
    ad_port = jg_ports.get("admin")
    if mon["annotations"]:
        check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(ad_port) and ann.get("prometheus.io/path") == "/metrics",
              f"scrape annotations {ann} must point at the admin port {ad_port} /metrics")
    else:
        check("prometheus.io/scrape" not in ann, "scrape annotations rendered although off")

    # ---- PDB, ServiceAccount
    pdbs = list(by.get("PodDisruptionBudget", {}).values())
    if check(len(pdbs) == 1, f"{len(pdbs)} PodDisruptionBudgets, want 1"):
        sel = pdbs[0]["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), "PDB selector does not match the pods")
        check(pdbs[0]["spec"].get("maxUnavailable") == 1, "PDB maxUnavailable must be 1")
    sa = pod.get("serviceAccountName")
    check(sa in by.get("ServiceAccount", {}), f"ServiceAccount {sa} is not rendered")

    # ---- monitoring objects
    sms = list(by.get("ServiceMonitor", {}).values())
    check(bool(sms) == mon["service_monitor"], f"ServiceMonitor rendered={bool(sms)}, want {mon['service_monitor']}")
    for sm in sms:
        sel = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in svc.values() if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        check([s["metadata"]["name"] for s in matched] == [headless], f"ServiceMonitor selects {[s['metadata']['name'] for s in matched]}, want only {headless} (lists members that are not ready)")
        for ep in sm["spec"]["endpoints"]:
            check(ep.get("port") in {p["name"] for p in hs["spec"]["ports"]}, f"ServiceMonitor port {ep.get('port')} is not a port of {headless}")
            check(ep.get("path") == "/metrics", f"ServiceMonitor path {ep.get('path')}")
    rules = list(by.get("PrometheusRule", {}).values())
    check(bool(rules) == mon["rule"], f"PrometheusRule rendered={bool(rules)}, want {mon['rule']}")
    if rules:
        with open(os.path.join(out, "rules.yml"), "w") as f:
            yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}, f, sort_keys=False)
    dash = [c for c in by.get("ConfigMap", {}).values() if c["metadata"]["name"].endswith("-dashboard")]
    check(bool(dash) == mon["dashboard"], f"dashboard ConfigMap rendered={bool(dash)}, want {mon['dashboard']}")
    for d in dash:
        check(d["metadata"].get("labels", {}).get("grafana_dashboard") == "1", "dashboard ConfigMap lacks the grafana_dashboard label")
        try:
            j = json.loads(d["data"]["joingate.json"])
            check(j.get("panels"), "dashboard has no panels")
            with open(os.path.join(out, "dashboard.json"), "w") as f:
                json.dump(j, f)
        except (KeyError, json.JSONDecodeError) as e:
            check(False, f"dashboard ConfigMap: joingate.json does not parse: {e}")


if __name__ == "__main__":
    main()
    for e in errors:
        print("  -", e)
    sys.exit(1 if errors else 0)
