// Prints the catalog benchmark's results (one JSON object per line, from
// bench/catalog-bench.sh) as a table with icroot / oxigraph ratios.
import { readFileSync } from "node:fs";

const rows = readFileSync(process.argv[2], "utf8").trim().split("\n")
    .map((l) => JSON.parse(l));
const f = (x, d = 1) => (x === undefined || x === null ? "-" : x.toFixed(d));
const ratio = (a, b) => (a && b ? (a / b).toFixed(1) + "x" : "-");

console.log("clouds    triples   load/s(ic)  load/s(ox)  ratio  " +
    "p50ms(ic) p99ms(ic) p50ms(ox)  q/s(ic)   q/s(ox)   ratio  " +
    "B/triple  matches(ic/ox)");
for (const r of rows) {
    const i = r.icroot, o = r.oxigraph || {};
    console.log([
        String(r.clouds).padEnd(9),
        String(i.triples).padEnd(9),
        f(i.load_triples_per_s, 0).padStart(11),
        f(o.load_triples_per_s, 0).padStart(11),
        ratio(i.load_triples_per_s, o.load_triples_per_s).padStart(6),
        f(i.query_p50_ms, 3).padStart(9),
        f(i.query_p99_ms, 3).padStart(9),
        f(o.query_p50_ms, 2).padStart(9),
        f(i.queries_per_s, 0).padStart(8),
        f(o.queries_per_s, 2).padStart(9),
        ratio(i.queries_per_s, o.queries_per_s).padStart(7),
        f(i.bytes_per_triple).padStart(9),
        `  ${i.matches}/${o.matches ?? (o.error ? "n/a" : "-")}`,
    ].join(" "));
    if (o.error)
        console.log(`          oxigraph: ${o.error}`);
    if (o.matches !== undefined && o.matches !== i.matches)
        console.log("          WARNING: the engines disagree on matches");
    if (i.sweep_slices)
        console.log(`          icroot dictionary sweep: ${i.sweep_terms} ` +
            `terms in ${i.sweep_slices} slices, ` +
            `${f(i.sweep_slice_ms, 3)} ms per slice (max ` +
            `${f(i.sweep_slice_max_ms, 3)})`);
}
