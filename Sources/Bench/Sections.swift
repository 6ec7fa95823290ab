/// Every benchmark section; add yours here (one file per section).
let benchSections: [BenchSection] = [
    .stateCodecs,
    .stateGraph,
    .platform,
    .checkpoint,
    .process,
    .fork,
    .dynamic,
    .net,
]
