"""Monitor ingest speed against GoAccess on the same Squid access.log, and database size.

One run, side by side:

1. a Squid native access.log of ``--lines`` lines (default 1,000,000; 3,000
   clients, 20,000 hosts with Zipf-like popularity, a realistic mix of result
   codes) parsed by GoAccess (Debian's, the command of ../shared/docs/monitor.md)
   and stored by ``squidguard-bloom-monitor ingest --once`` into SQLite and into
   PostgreSQL (a private server started here, default durability settings),
   once for each ``--workers`` value (default: 1, all in one process, and this
   machine's default, one worker process per CPU up to 4);
2. the same for ``--helper-lines`` helper decision lines (squidGuard format:
   blocks, passes, welcomes), into SQLite and PostgreSQL (GoAccess cannot read
   them);
3. database bytes per raw row (table plus its time index), of the search postings per raw
   row, and the rollups' size;
4. with ``--stages``: where an access.log line's CPU goes inside one ingest
   process (``parse_access_data``: the C scanner and the rows built in Python, as
   ingest parses; next to it, not summed, the Python-only parse: decoding and
   splitting, ``parse_access``), ``Rollups.add_access``,
   ``executemany`` into the ``access`` table (time index) with its COMMIT, the search
   postings, the rollups' upserts), best of three passes over the log's first ``--stage-lines``
   lines, next to GoAccess's CPU per line and the budget that 3x GoAccess
   leaves.

Each ingest is a separate process, timed from start to exit (start-up,
migrations and the final commit included), ``--repeat`` times (default 3), each
into a fresh database; the table shows the run of median wall time, and its
notes every run's time. CPU is that process's user+system time (its workers
included), and for PostgreSQL the server's CPU is shown too. Peak RSS is the
largest sum of resident memory over the ingest process and its workers
(GoAccess: its process), sampled every 20 ms. Before each run the dirty pages
of the last are written out (untimed). After each PostgreSQL run (untimed)
its database is vacuumed and analyzed and a checkpoint written, so that no run
pays for the autovacuum and checkpoint of the run before it; a run that the
server's autovacuum fell into (it vacuums and analyzes the tables a run has
just filled, on the same two cores, whenever its schedule says) is marked.
The machine's cores are shared, so wall-clock figures move with its load: the
load average is printed, and lines per CPU second are the steadier comparison.

    python bench/monitor_ingest.py [--lines N] [--helper-lines N] [--no-postgresql]
                                   [--workers 1,2] [--repeat N]
                                   [--stages [--stage-lines N]]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from squidguard_bloom.monitor import postings  # noqa: E402
from squidguard_bloom.monitor.cli import default_workers  # noqa: E402
from squidguard_bloom.monitor.migrate import open_database  # noqa: E402
from squidguard_bloom.monitor.parse import (  # noqa: E402
    ACCESS_COLUMNS,
    parse_access,
    parse_access_data,
    split_lines,
)
from squidguard_bloom.monitor.rollup import Rollups  # noqa: E402
from tests.monitor.pgserver import PostgresServer, find_bindir  # noqa: E402

GOACCESS_FORMAT = "%x.%^ %~%L %h %^/%s %b %m %U"
START = 1796300000.0
RESULTS = (["TCP_MISS/200"] * 9 + ["TCP_HIT/200", "TCP_MEM_HIT/200", "TCP_MEM_HIT/200",
           "TCP_REFRESH_UNMODIFIED/304", "TCP_TUNNEL/200", "TCP_MISS/304", "TCP_MISS/404",
           "TCP_DENIED/403", "TCP_REDIRECT/302"])
MIMES = ["text/html", "image/png", "image/jpeg", "application/javascript", "text/css", "-"]


def make_access_log(path: Path, lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    hosts = [f"www.site{i}.example" for i in range(20000)]
    weights = [1.0 / (k + 1) for k in range(len(hosts))]
    clients = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(3000)]
    with path.open("w") as fh:
        done = 0
        while done < lines:
            n = min(100000, lines - done)
            picked = rng.choices(hosts, weights=weights, k=n)
            out = []
            for k in range(n):
                i = done + k
                result = rng.choice(RESULTS)
                method = "CONNECT" if result.startswith("TCP_TUNNEL") else "GET"
                url = (f"{picked[k]}:443" if method == "CONNECT"
                       else f"http://{picked[k]}/p/{i % 5000}/item.html?id={i}")
                out.append(f"{START + i * 0.01:.3f} {rng.randint(1, 3000):6d} "
                           f"{rng.choice(clients)} {result} {rng.randint(200, 90000)} {method} "
                           f"{url} - HIER_DIRECT/192.0.2.{i % 250} {rng.choice(MIMES)}\n")
            fh.write("".join(out))
            done += n


def make_helper_log(path: Path, lines: int, seed: int = 8) -> None:
    rng = random.Random(seed)
    hosts = [f"bad{i}.example" for i in range(5000)]
    cats = ["porn", "ads", "malware", "gambling"]
    with path.open("w") as fh:
        out = []
        for i in range(lines):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(START + i * 0.01))
            pick = rng.random()
            if pick < 0.6:
                cat, action = rng.choice(cats), "REDIRECT"
            elif pick < 0.9:
                cat, action = "none", "PASS"
            else:
                cat, action = "welcome", "WELCOME"
            out.append(f"{stamp} [4242] Request(default/{cat}/-) http://{rng.choice(hosts)}/x/"
                       f"{i} 10.0.{i % 200}.{i % 250}/- - GET {action}\n")
            if len(out) == 100000:
                fh.write("".join(out))
                out.clear()
        fh.write("".join(out))


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """User+system CPU of a process and its reaped children (PostgreSQL backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class TreeRss:
    """Resident bytes of a process and all its descendants, cheap enough to sample often.

    Each process's parent is read once, when its pid first appears in /proc; a sample then
    reads only the tree's own ``statm``. (Reading every process's ``stat`` at each sample, as
    this benchmark first did, took about 0.9 ms of CPU a sample here, 50 times a second, on
    the cores the measured run uses; this takes about 0.2 ms.)"""

    def __init__(self, root: int) -> None:
        self.root = root
        self.parent: dict[int, int] = {}
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> int:
        """Resident bytes of the tree now (0 once it is gone)."""
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in self.parent:
                try:
                    stat = Path("/proc", name, "stat").read_text()
                except OSError:
                    continue
                self.parent[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
        total, todo = 0, [self.root]
        while todo:
            pid = todo.pop()
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.page
            except OSError:
                continue  # gone; so are the children it had
            todo.extend(child for child, parent in self.parent.items() if parent == pid)
        return total


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak resident bytes of the process tree, sampled every 20 ms).

    The dirty pages of earlier runs are written out first, untimed, so that the kernel does
    not write them on this run's cores."""
    os.sync()
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]

    tree = TreeRss(proc.pid)

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree.sample())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _out, err = proc.communicate()
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return wall, cpu, peak[0]


def ingest(db_url: str, proxy_dir: Path, workers: int) -> tuple[float, float, int]:
    return timed([sys.executable, "-m", "squidguard_bloom.monitor", "--db", db_url, "ingest",
                  "--once", "--proxy", f"p1={proxy_dir}", "--workers", str(workers)])


def settle(db_url: str) -> None:
    """Leave the server idle for the next timed run: vacuum and analyze what this run stored
    (else autovacuum does it during the next run, on its CPU) and write its dirty pages."""
    with open_database(db_url) as db:  # autocommit between transactions, as VACUUM needs
        db.execute("VACUUM (ANALYZE)")
        db.execute("CHECKPOINT")


def autovacuumed(db_url: str) -> bool:
    """Whether the server's autovacuum vacuumed or analyzed a table of this database, or is
    at it now (it shares the cores with the run it falls in)."""
    with open_database(db_url) as db:
        done = db.scalar("SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) "
                         "FROM pg_stat_user_tables")
        busy = db.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                         "'autovacuum worker' AND datname = current_database()")
    return bool(done) or bool(busy)


def drop(db_url: str, server: PostgresServer | None) -> None:
    """Remove a run's database (SQLite: its files; PostgreSQL: DROP DATABASE)."""
    if server is None or not db_url.startswith("postgresql://"):
        for suffix in ("", "-wal", "-shm"):
            Path(db_url + suffix).unlink(missing_ok=True)
        return
    with open_database(server.url(), migrate=False) as db:
        db.execute(f"DROP DATABASE {db_url.rsplit('/', 1)[1]}")


def summary(runs: list[tuple[float, float, int, float, bool]], pg: bool
            ) -> tuple[float, float, int, str]:
    """(wall, CPU, peak RSS, notes) of repeated runs: the run of median wall time, and in the
    notes every run's wall time, the server's CPU and in which runs autovacuum ran."""
    ordered = sorted(runs, key=lambda r: r[0])
    wall, cpu, rss, used, _ = ordered[(len(ordered) - 1) // 2]
    notes = []
    if pg:
        notes.append(f"server CPU {used:.1f} s")
    if len(runs) > 1:
        notes.append("runs " + ", ".join(f"{r[0]:.1f}" + (" (autovacuum)" if r[4] else "")
                                         for r in runs) + " s")
    return wall, cpu, rss, "; ".join(notes)


def layout(work: Path, name: str, stream: str, source: Path) -> Path:
    """work/name/STREAM/00000001-...log, a hard link to source; returns work/name."""
    d = work / name / stream
    d.mkdir(parents=True)
    os.link(source, d / "00000001-fe01-1.log")
    return work / name


def sizes(db_url: str, table: str) -> tuple[int, float, float, int, int]:
    """(rows, bytes per row, search postings' bytes per row, rollup bytes, rollup rows)."""
    with open_database(db_url) as db:
        rows = int(db.scalar(f"SELECT count(*) FROM {table}"))
        by_table = db.table_bytes()
        rollup_rows = sum(int(db.scalar(f"SELECT count(*) FROM {t}"))
                          for t in by_table if t.startswith("rollup_"))
    rollups = sum(v for k, v in by_table.items() if k.startswith("rollup_"))
    index = by_table.get(postings.TABLES[table], 0)
    return rows, by_table.get(table, 0) / max(rows, 1), index / max(rows, 1), rollups, \
        rollup_rows


def stages(access_log: Path, work: Path, lines: int) -> tuple[list[tuple[str, float]],
                                                                list[tuple[str, float]]]:
    """CPU seconds per line of each ingest stage over access_log's first lines lines (best
    of three passes; each pass stores into a fresh SQLite database), and of the Python-only
    parse that the C scanner replaces (not one of the stages)."""
    with access_log.open("rb") as fh:
        data = b"".join(fh.readline() for _ in range(lines))
    best: dict[str, float] = {}
    python_only = ("decode and split into lines", "parse_access (fields, conversions, host)")

    def keep(name: str, start: float, n: int) -> None:
        took = (time.process_time() - start) / max(n, 1)
        best[name] = min(best.get(name, took), took)

    for k in range(3):
        t = time.process_time()
        text = split_lines(data, False)
        n = len(text)
        keep(python_only[0], t, n)
        rows: list[tuple] = []
        bad: list[tuple[int, str]] = []
        t = time.process_time()
        parse_access(text, 1, rows, bad)
        keep(python_only[1], t, n)
        del text, rows
        gc.collect()
        rows = []
        t = time.process_time()
        parse_access_data(data, False, 1, rows, bad)
        keep("parse_access_data (C scanner, rows built in Python)", t, n)
        t = time.process_time()
        rollups = Rollups()
        rollups.add_access(rows)
        keep("Rollups.add_access (bucket sums)", t, n)
        with open_database(str(work / f"stages-{k}.db")) as db:
            with db.transaction():
                db.execute("INSERT INTO proxies (name, first_seen) VALUES ('p1', 0)")
            t = time.process_time()
            with db.transaction():
                db.insert_rows("access", ACCESS_COLUMNS, rows)
            keep("executemany into the access table (time index) + COMMIT", t, n)
            t = time.process_time()
            with db.transaction():
                rollups.postings().write(db)
            keep("search postings + COMMIT", t, n)
            t = time.process_time()
            with db.transaction():
                rollups.write(db)
            keep("rollup upserts + COMMIT", t, n)
    return ([(name, v) for name, v in best.items() if name not in python_only],
            [(name, v) for name, v in best.items() if name in python_only])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--helper-lines", type=int, default=1_000_000)
    p.add_argument("--no-postgresql", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each ingest, each into a fresh database; the table shows the "
                   "run of median wall time (default 3)")
    p.add_argument("--stages", action="store_true",
                   help="also time each ingest stage on the access.log, in this process")
    p.add_argument("--stage-lines", type=int, default=200_000)
    p.add_argument("--workers", default=f"1,{default_workers()}",
                   help="ingest's --workers values to compare (default: 1 and this machine's "
                   "default)")
    args = p.parse_args()
    workers = sorted({int(w) for w in args.workers.split(",")})

    work = Path(tempfile.mkdtemp(prefix="sgb-bench-monitor-"))
    server = None
    results: list[tuple[str, str, int, float, float, int, str]] = []
    size_rows: list[tuple[str, str, int, float, float, int, int]] = []
    try:
        access_log, helper_log = work / "access.log", work / "blocked.log"
        print(f"generating {args.lines:,} access.log lines and {args.helper_lines:,} helper "
              f"lines in {work} ...", flush=True)
        make_access_log(access_log, args.lines)
        make_helper_log(helper_log, args.helper_lines)
        print(f"load average before: {os.getloadavg()}", flush=True)

        goaccess = shutil.which("goaccess")
        if goaccess is None:
            raise SystemExit("goaccess is not installed: run ./setup.sh test (installs it)")
        version = subprocess.run([goaccess, "--version"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[0]
        wall, cpu, rss = timed([goaccess, str(access_log), "--log-format", GOACCESS_FORMAT,
                                "--date-format=%s", "--time-format=%s", "--no-global-config",
                                "-o", str(work / "report.json")])
        results.append(("access.log", version, args.lines, wall, cpu, rss, ""))
        goaccess_rate = args.lines / wall

        targets = [("SQLite", lambda name: str(work / f"{name}.db"))]
        if not args.no_postgresql:
            if find_bindir() is None:
                raise SystemExit("PostgreSQL is not installed: run ./setup.sh test")
            server = PostgresServer(durable=True)
            targets.append(("PostgreSQL", lambda _name: server.new_database()))

        for label, log, table, stream, lines in (
                ("access.log", access_log, "access", "access", args.lines),
                ("helper log", helper_log, "decisions", "blocked", args.helper_lines)):
            for db_name, make_url in targets:
                for n in workers:
                    how = "1 process" if n == 1 else f"{n} workers"
                    runs: list[tuple[float, float, int, float, bool]] = []
                    for rep in range(args.repeat):
                        name = f"{stream}-{db_name.lower()}-{n}-{rep}"
                        url = make_url(name)
                        proxy = layout(work, name, stream, log)
                        pg_server = server if db_name == "PostgreSQL" else None
                        server_cpu0 = proc_cpu(pg_server.server.pid) if pg_server else 0.0
                        wall, cpu, rss = ingest(url, proxy, n)
                        used, vacuumed = 0.0, False
                        if pg_server is not None:
                            time.sleep(0.5)  # let the backends exit, so the postmaster reaped them
                            used = proc_cpu(pg_server.server.pid) - server_cpu0
                            vacuumed = autovacuumed(url)
                        runs.append((wall, cpu, rss, used, vacuumed))
                        rows, per_row, index, rollup_bytes, rollup_rows = sizes(url, table)
                        assert rows == lines, f"{db_name}: {rows} rows for {lines} lines"
                        last = rep == args.repeat - 1
                        if last and n == workers[-1]:
                            size_rows.append((label, db_name, rows, per_row, index,
                                              rollup_bytes, rollup_rows))
                        if pg_server is not None:
                            settle(url)
                        if not last:  # the next run starts from the same state
                            drop(url, server)
                    results.append((label, f"monitor -> {db_name}, {how}", lines,
                                    *summary(runs, db_name == "PostgreSQL")))
        print(f"load average after: {os.getloadavg()}\n")

        print("| log | program | lines | wall s | lines/s | CPU s | lines per CPU s | "
              "peak RSS MB | vs GoAccess (wall) | notes |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for label, prog, lines, wall, cpu, rss, extra in results:
            ratio = f"{lines / wall / goaccess_rate:.2f}x" if label == "access.log" else "-"
            print(f"| {label} | {prog} | {lines:,} | {wall:.1f} | {lines / wall:,.0f} | {cpu:.1f} "
                  f"| {lines / cpu:,.0f} | {rss / 1e6:,.0f} | {ratio} | {extra} |")
        print("\n| log | database | raw rows | bytes per raw row (with its time index) | "
              "search postings, bytes per raw row | rollup bytes | rollup rows |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for label, db_name, rows, per_row, index, rollup_bytes, rollup_rows in size_rows:
            print(f"| {label} | {db_name} | {rows:,} | {per_row:.0f} | {index:.0f} | "
                  f"{rollup_bytes:,} | {rollup_rows:,} |")
        if args.stages:
            goaccess_cpu = results[0][4] / args.lines
            parts, python_only = stages(access_log, work, min(args.stage_lines, args.lines))
            print(f"\n| access.log stage (first {min(args.stage_lines, args.lines):,} lines, "
                  "best of 3) | CPU us per line |")
            print("|---|---:|")
            for name, per_line in parts:
                print(f"| {name} | {per_line * 1e6:.2f} |")
            print(f"| sum of the stages | {sum(v for _, v in parts) * 1e6:.2f} |")
            for name, per_line in python_only:
                print(f"| (Python only, not summed) {name} | {per_line * 1e6:.2f} |")
            print("| (Python only, not summed) both, against parse_access_data | "
                  f"{sum(v for _, v in python_only) * 1e6:.2f} |")
            print(f"| GoAccess, whole run | {goaccess_cpu * 1e6:.2f} |")
            print(f"| budget for 3x GoAccess per CPU second | {goaccess_cpu / 3 * 1e6:.2f} |")
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
