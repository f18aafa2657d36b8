// Oxigraph side of the Intercloud Root catalog benchmark.
//
//     node query.mjs FILE.nt QUERIES
//
// Loads FILE.nt (N-Triples, e.g. from bench/gen/gen-catalog) into an
// in-memory Oxigraph store, then runs the seed paper's constraint query
// QUERIES + 1 times; the first run is a warm-up and is not counted. Prints
// one JSON line on stdout.
//
// The file is handed to store.load() as an iterable of byte chunks rather
// than one string or buffer: a V8 string cannot exceed ~512 MiB and the
// WASM heap is capped at 4 GiB, so a 10^6-cloud catalog (~2 GB of
// N-Triples) must never be held whole.

import { openSync, readSync, closeSync } from "node:fs";
import { createRequire } from "node:module";
import oxigraph from "oxigraph";

const require = createRequire(import.meta.url);
const { version } = require("oxigraph/package.json");

const CHUNK_BYTES = 16 << 20;

const QUERY = `
PREFIX ic: <http://www.csp/resOntology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT DISTINCT ?jid WHERE {
  ?c a ic:Cloud ; ic:jid ?jid ; ic:availability ?a ; ic:replicationFactor ?r ;
     ic:country ?co ; ic:storageReplicationMethod "AMQP" ;
     ic:storageAccessProtocol "NFS" .
  ?co rdfs:label "JAPAN" .
  FILTER(?a >= 99.999 && ?r >= 5)
} ORDER BY ?jid
`;

function usage() {
    process.stderr.write("usage: node query.mjs FILE.nt QUERIES\n");
    process.exit(2);
}

// Yields the file behind fd in CHUNK_BYTES pieces and closes it at the end.
function* fileChunks(fd) {
    try {
        for (;;) {
            // A fresh buffer each time: the consumer may keep a reference.
            const buf = new Uint8Array(CHUNK_BYTES);
            const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
            if (n === 0)
                return;
            yield n === CHUNK_BYTES ? buf : buf.subarray(0, n);
        }
    } finally {
        closeSync(fd);
    }
}

// A failed load still yields one JSON line, so a driver can record it.
// "RuntimeError: unreachable" from inside the WASM module is how a Rust
// allocation failure surfaces: the store outgrew the 4 GiB linear memory
// of wasm32, which no Node.js flag raises.
function fail(err, loadS) {
    let msg = String(err);
    if (err instanceof WebAssembly.RuntimeError)
        msg += " (WASM trap; likely out of the 4 GiB wasm32 memory)";
    const result = {
        engine: "oxigraph",
        version,
        error: "load failed: " + msg,
        load_s: round(loadS, 3),
        rss_mb: round(process.memoryUsage().rss / (1 << 20), 1),
    };
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(1);
}

function seconds(t0, t1) {
    return Number(t1 - t0) / 1e9;
}

// Nearest-rank percentile of an ascending array.
function percentile(sorted, p) {
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(rank, 1)) - 1];
}

function round(x, digits) {
    const f = 10 ** digits;
    return Math.round(x * f) / f;
}

function main(argv) {
    if (argv.length !== 2)
        usage();
    const path = argv[0];
    const queries = Number(argv[1]);
    if (!Number.isInteger(queries) || queries < 1)
        usage();

    let fd;
    try {
        fd = openSync(path, "r");
    } catch (e) {
        process.stderr.write(`query.mjs: ${e.message}\n`);
        process.exit(2);
    }

    const store = new oxigraph.Store();
    const l0 = process.hrtime.bigint();
    try {
        store.load(fileChunks(fd), { format: "application/n-triples" });
    } catch (e) {
        fail(e, seconds(l0, process.hrtime.bigint()));
    }
    const l1 = process.hrtime.bigint();
    const loadS = seconds(l0, l1);
    const triples = store.size;
    const rssMb = process.memoryUsage().rss / (1 << 20);

    let rows = store.query(QUERY); // warm-up, not counted
    const times = [];
    for (let i = 0; i < queries; i++) {
        const q0 = process.hrtime.bigint();
        rows = store.query(QUERY);
        const q1 = process.hrtime.bigint();
        times.push(seconds(q0, q1));
    }
    const total = times.reduce((a, b) => a + b, 0);
    times.sort((a, b) => a - b);

    const result = {
        engine: "oxigraph",
        version,
        triples,
        load_s: round(loadS, 3),
        load_triples_per_s: Math.round(triples / loadS),
        queries,
        matches: rows.length,
        query_p50_ms: round(percentile(times, 50) * 1e3, 3),
        query_p99_ms: round(percentile(times, 99) * 1e3, 3),
        queries_per_s: round(queries / total, 2),
        rss_mb: round(rssMb, 1),
    };
    process.stdout.write(JSON.stringify(result) + "\n");
}

main(process.argv.slice(2));
