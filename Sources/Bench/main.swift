#if canImport(Glibc)
import Glibc
#endif

/// `runsc-bench [SECTION...] [--option value...]`: runs the named sections
/// (all when none is named) and prints a table for each. Sections are listed
/// in Sections.swift.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print("usage: runsc-bench [SECTION...] [OPTIONS]\n\nsections:")
    for section in benchSections {
        print("  \(padded(section.name, 16)) \(section.summary)")
        for option in section.options { print("      \(option)") }
    }
    exit(0)
}
let named = arguments.prefix { !$0.hasPrefix("--") }
let options = BenchOptions(Array(arguments.dropFirst(named.count)))
let chosen = named.isEmpty ? benchSections : named.compactMap { name in benchSections.first { $0.name == name } }
if chosen.count != named.count || named.isEmpty && benchSections.isEmpty {
    let known = benchSections.map(\.name).joined(separator: ", ")
    printError("unknown section in \(named.joined(separator: " ")); known: \(known)")
    exit(2)
}
do {
    for section in chosen {
        try section.run(options)
    }
} catch {
    printError("\(error)")
    exit(1)
}
