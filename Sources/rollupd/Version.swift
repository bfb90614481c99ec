/// rollupd's version, as in the VERSION file at the repository root (kept in step by hand).
let rollupdVersion = "0.1.0"
