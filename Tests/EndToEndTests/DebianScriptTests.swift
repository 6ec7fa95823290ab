import Foundation
import Testing

/// Debian's own dynamic programs (bash, coreutils, python3, perl, sqlite3,
/// gzip, xz, tar) doing real work in a sandbox with the host's system
/// directories bind-mounted read-only, each script compared with the same
/// script run natively. Every script runs under `env -i` with LC_ALL=C and
/// TZ=UTC and works in `$W`, a fresh directory on a tmpfs on both sides
/// (the sandbox's /tmp, the host's /dev/shm), so listings and sizes compare.
/// Signals start at their defaults (`env --default-signal`): the test
/// runner's children inherit ignored ones, which bash then cannot trap.
@Suite struct DebianScriptTests {
    static let bash = "/usr/bin/bash"

    /// DynamicProgramTests' directories and /bin, as a Debian image has them
    /// (/bin/sh for tar's compressors, python's subprocess, gunzip's script);
    /// it hides the fixtures, which these scripts do not use.
    static let hostDirectories = DynamicProgramTests.hostDirectories + ["/bin"]

    /// `env -i ... bash -c script` with W (and D, when given) set.
    static func command(_ script: String, work: String, data: String?) -> [String] {
        ["/usr/bin/env", "-i", "--default-signal", "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "HOME=/", "W=" + work]
            + (data.map { ["D=" + $0] } ?? []) + [bash, "-c", script]
    }

    /// A fresh directory under `parent` on the host, removed by the caller.
    static func hostDirectory(in parent: String) throws -> String {
        let path = parent + "/runsc-debian-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `script` natively and in the sandbox and expects the same status
    /// and output. With `hostData`, `$D` is a writable host directory
    /// (bind-mounted at /data in the sandbox). With `allCapabilities`, the
    /// container's root has every capability, as the native run's has.
    static func expectSameAsNative(_ script: String, hostData: Bool = false, allCapabilities: Bool = false,
                                   requires programs: [String] = [],
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        for program in [bash] + programs {
            try #require(FileManager.default.isExecutableFile(atPath: program), "\(program) is not installed",
                         sourceLocation: sourceLocation)
        }
        let nativeWork = try hostDirectory(in: "/dev/shm")
        defer { try? FileManager.default.removeItem(atPath: nativeWork) }
        let nativeData = hostData ? try hostDirectory(in: NSTemporaryDirectory()) : nil
        defer { if let nativeData { try? FileManager.default.removeItem(atPath: nativeData) } }
        let nativeCommand = command(script, work: nativeWork + "/w", data: nativeData)
        let native = try Fixtures.run(nativeCommand[0], Array(nativeCommand.dropFirst()))
        #expect(native.status == 0, "native: \(native.stderr)", sourceLocation: sourceLocation)

        let result = try runInSandbox(script, hostData: hostData, allCapabilities: allCapabilities)
        #expect(result.status == native.status, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout == native.stdout, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(!native.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    /// Runs `script` in a sandbox with the host's system directories (and,
    /// with `hostData`, a writable host directory at /data as `$D`).
    static func runInSandbox(_ script: String, hostData: Bool = false,
                             allCapabilities: Bool = false) throws -> RunscProcess.Result {
        let sandboxData = hostData ? try hostDirectory(in: NSTemporaryDirectory()) : nil
        defer { if let sandboxData { try? FileManager.default.removeItem(atPath: sandboxData) } }
        let sandbox = try SandboxRun(command(script, work: "/tmp/w", data: sandboxData.map { _ in "/data" }),
                                     start: false)
        var mounts = hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }
            .map { ($0, $0, ["ro"]) }
        if let sandboxData { mounts.append(("/data", sandboxData, ["rw"])) }
        try BindMountTests.addBindMounts(mounts, to: sandbox.bundle)
        if allCapabilities { try SandboxRun.grantAllCapabilities(bundle: sandbox.bundle) }
        return try sandbox.start().finish(timeout: 240)
    }

    /// The container's own host and domain names and kernel log, and the
    /// host's clock out of reach. Not compared with a native run, which
    /// would rename the host: hostname, domainname and dmesg as root and as
    /// another user, date -s, and Python's reading of the clock (adjtimex).
    @Test func hostNameKernelLogAndClockAreTheContainers() throws {
        let result = try Self.runInSandbox("""
            hostname box1; hostname; uname -n; domainname example.org; domainname
            setpriv --reuid=1000 hostname other 2>&1; hostname
            dmesg | grep -c 'Linux version'; setpriv --reuid=1000 dmesg > /dev/null 2>&1; echo "dmesg as a user: $?"
            date -s @0 > /dev/null 2>&1; echo "date -s: $?"
            python3 -c 'import time; print(time.get_clock_info("time").adjustable)'
            """, allCapabilities: true)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            box1
            box1
            example.org
            hostname: you must be root to change the host name
            box1
            1
            dmesg as a user: 1
            date -s: 1
            True

            """, "\(result.stderr)")
    }

    /// Creates `$W` with a few files of fixed contents and mtimes.
    static let makeTree = """
        mkdir -p "$W/tree/sub/deeper" && cd "$W" || exit 1
        for i in 1 2 3 4 5; do seq 1 $((i * 700)) > tree/file$i.txt; done
        printf 'alpha\\nbeta\\ngamma\\n' > tree/sub/greek.txt
        head -c 10000 /usr/bin/bash > tree/sub/deeper/blob.bin
        ln -s file1.txt tree/link
        find tree -exec touch -h -d '2021-03-04 05:06:07' {} +

        """

    @Test func bashPipelinesSubshellsHereDocsFunctionsJobsAndTraps() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            square() { local n=$1; echo "square $n $((n * n))"; }
            for i in 3 1 2; do square "$i"; done | sort -k2 -n | tr a-z A-Z
            word=$(echo hello | sed 's/h/j/'); echo "command substitution: $word $(echo $(echo nested))"
            (cd /usr && echo "subshell in $PWD"; exit 3); echo "subshell status $? and still in ${PWD##*/}"
            cat <<EOF | wc -l
            one $word
            two $((6 * 7))
            EOF
            cat <<'EOF'
            quoted $word stays
            EOF
            trap 'echo "trap USR1 caught"' USR1
            kill -USR1 $$
            pids=()
            for i in 1 2 3 4; do (sleep "0.0$((5 - i))"; echo "job $i" > "job.$i"; exit "$i") & pids+=($!); done
            for p in "${pids[@]}"; do wait "$p"; echo "wait status $?"; done
            cat job.*
            sleep 5 & sleeper=$!; kill -TERM "$sleeper"; wait "$sleeper"; echo "killed job status $?"
            read -r a b <<< "here string"; echo "$b $a"
            declare -A colours=([red]=1 [green]=2); for k in $(printf '%s\\n' "${!colours[@]}" | sort); do echo "$k=${colours[$k]}"; done
            trap 'echo "trap EXIT ran"' EXIT
            exit 0
            """)
    }

    @Test func coreutilsListSortDuFindAndXargs() throws {
        try Self.expectSameAsNative(Self.makeTree + """
            ls -l tree tree/sub
            ls -la --time-style=full-iso tree/sub/deeper
            sort -t: -k3 -n -r /etc/passwd | head -5
            sort -n -r tree/file2.txt | head -3; sort -u tree/sub/greek.txt tree/sub/greek.txt
            du -a tree | sort -k2; du -sb tree; du -sh tree/sub
            find tree -type f -name '*.txt' -exec wc -l {} + | sort
            find tree -newer /usr/bin/bash -print | sort; find tree -mindepth 2 -type d -exec ls -ld {} \\;
            find tree -type f -print0 | sort -z | xargs -0 cat | md5sum
            seq 1 10 | xargs -n 3 echo row
            printf '%s\\n' c a b | xargs -I{} sh -c 'echo item {} > tree/x.{}'; cat tree/x.*
            stat -c '%n %s %Y %A' tree/sub/greek.txt tree/link
            fallocate -l 64K alloc; fallocate -n -o 64K -l 8K alloc; truncate -s 1M sparse; du -k alloc sparse; stat -c '%n %s' alloc
            """)
    }

    @Test func python3SubprocessJsonHashlibAndSqlite3() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            /usr/bin/python3 - <<'EOF'
            import hashlib, json, sqlite3, subprocess, os
            child = subprocess.run(["/usr/bin/seq", "1", "5"], capture_output=True, text=True, check=True)
            print("child said", child.stdout.split())
            print("child status", subprocess.run(["/bin/sh", "-c", "exit 7"]).returncode)
            first = subprocess.Popen(["/usr/bin/seq", "1", "1000"], stdout=subprocess.PIPE)
            second = subprocess.Popen(["/usr/bin/grep", "7"], stdin=first.stdout, stdout=subprocess.PIPE)
            first.stdout.close()
            out, _ = second.communicate()
            print("pipeline", len(out.splitlines()), first.wait(), second.returncode)
            data = {"name": "runsc", "list": list(range(5)), "nested": {"ok": True, "pi": 3.25}}
            text = json.dumps(data, sort_keys=True)
            print(text, json.loads(text) == data)
            print(hashlib.sha256(text.encode()).hexdigest(), hashlib.md5(b"abc").hexdigest(),
                  hashlib.blake2b(b"x" * 100000).hexdigest()[:32])
            db = sqlite3.connect("py.db")
            db.execute("create table t (k integer primary key, v text)")
            with db:
                db.executemany("insert into t (v) values (?)", [(str(i * i),) for i in range(1000)])
            print(db.execute("select count(*), sum(length(v)), max(k) from t").fetchone())
            db.close()
            print("db file", os.path.getsize("py.db") > 0)
            EOF
            """, requires: ["/usr/bin/python3"])
    }

    @Test func perlReadsAFileAndMatchesRegexes() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            /usr/bin/perl -e '
                open(my $in, "<", "/etc/passwd") or die "open: $!";
                my %shells; my $n = 0;
                while (my $line = <$in>) { $n++; $shells{$1}++ if $line =~ m{:([^:]*)$}; }
                close $in;
                print "$_ $shells{$_}\\n" for sort keys %shells;
                open(my $out, ">", "words") or die; print $out join("\\n", map { "word$_" } 1..50), "\\n"; close $out;
                open($in, "<", "words") or die; my @hits = grep { /^word(\\d)\\1$/ } <$in>; close $in;
                print "lines $n, repeated digits: ", scalar(@hits), " ", join(",", map { chomp; $_ } @hits), "\\n";
                (my $s = "Hello, World") =~ s/(\\w+)/\\U$1/g; print "$s\\n";
                printf "%.3f\\n", atan2(1, 1) * 4;'
            """, requires: ["/usr/bin/perl"])
    }

    /// sqlite3's CLI on a database on a tmpfs and on a host directory
    /// bind-mounted writable: a table, 1000 rows in one transaction, aggregates.
    @Test(arguments: ["$W", "$D"])
    func sqlite3CLIWithADatabaseFile(_ directory: String) throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            db=\(directory)/test.db
            { echo 'create table t (k integer primary key, name text, n integer);'
              echo 'begin;'
              for i in $(seq 1 1000); do echo "insert into t (name, n) values ('row$i', $((i * 7 % 113)));"; done
              echo 'commit;'; } | /usr/bin/sqlite3 "$db"
            /usr/bin/sqlite3 "$db" 'select count(*), sum(n), min(n), max(n), avg(n) from t;' \\
                'select n % 5, count(*) from t group by n % 5 order by 1;' \\
                "select name from t where name like 'row99%' order by k;" 'pragma integrity_check;'
            /usr/bin/sqlite3 "$db" 'create index byn on t (n);' 'select count(*) from t where n = 42;'
            """, hostData: directory == "$D", requires: ["/usr/bin/sqlite3"])
    }

    @Test func gzipAndXzRoundTripAFile() throws {
        try Self.expectSameAsNative(Self.makeTree + """
            cat tree/file*.txt tree/sub/deeper/blob.bin > data; sum=$(sha256sum < data)
            gzip -9 -n -k data && gzip -t data.gz && sha256sum data.gz && mv data orig
            gunzip data.gz && [ "$(sha256sum < data)" = "$sum" ] && echo "gunzip: same"
            xz -6 -k -T1 data && xz -t data.xz && sha256sum data.xz && xz -l data.xz | tail -1 && rm data
            unxz data.xz && [ "$(sha256sum < data)" = "$sum" ] && echo "unxz: same"
            gzip -c data | gzip -dc | cmp - orig && echo "pipe: same"; xz -T2 -c data | unxz | cmp - orig && echo "threads: same"
            """, requires: ["/usr/bin/xz", "/usr/bin/gzip"])
    }

    @Test func tarCreatesAndExtractsATree() throws {
        try Self.expectSameAsNative(Self.makeTree + """
            tar --sort=name --owner=0 --group=0 --numeric-owner -cf tree.tar tree && sha256sum tree.tar
            tar -tvf tree.tar
            tar --sort=name -czf tree.tgz tree && mkdir out && tar -xzf tree.tgz -C out
            (cd tree && find . | sort | xargs ls -ld --time-style=full-iso) > before
            (cd out/tree && find . | sort | xargs ls -ld --time-style=full-iso) > after
            diff before after && echo "listings equal"; wc -l < after
            """, requires: ["/usr/bin/tar"])
    }

    /// make -j4 runs its recipes through posix_spawn, whose
    /// POSIX_SPAWN_RESETIDS calls setresuid and setresgid; gcc, as and ld
    /// compile and link a library and a program that uses it.
    @Test func makeBuildsALibraryAndAProgramWithGcc() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            for i in 1 2 3 4 5 6; do printf 'int f%d(void) { return %d; }\n' $i $i > f$i.c; done
            cat > main.c <<'EOF'
            #include <stdio.h>
            int f1(void), f6(void);
            int main(void) { printf("%d\\n", f1() + f6()); return 0; }
            EOF
            printf 'OBJS = f1.o f2.o f3.o f4.o f5.o f6.o\nmain: main.o libf.a\n\tgcc -o $@ main.o -L. -lf\nlibf.a: $(OBJS)\n\tar rcs $@ $(OBJS)\n%%.o: %%.c\n\tgcc -O2 -c $< -o $@\n' > Makefile
            make -s -j4 && ./main && ar t libf.a | sort && make -q main && echo "up to date"
            """, requires: ["/usr/bin/make", "/usr/bin/gcc"])
    }

    /// util-linux's setpriv drops to another user with setgroups, setresgid,
    /// setresuid and capset; id and /proc/self/status show the result.
    @Test func setprivRunsACommandAsAnotherUser() throws {
        try Self.expectSameAsNative("""
            setpriv --reuid=1000 --regid=100 --clear-groups id
            setpriv --reuid=1000 --regid=100 --groups=5,7 --inh-caps=-all bash -c 'id; grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb)" /proc/self/status'
            setpriv --reuid=1000 --regid=1000 --init-groups true 2>&1; echo "init-groups: $?"
            setpriv --keep-groups --reuid=1000 cat /proc/1/environ > /dev/null 2>&1; echo "other user's environ: $?"
            mkdir -p "$W" && chmod 700 "$W" && touch "$W/root" && echo "root: $?"
            setpriv --reuid=1000 --regid=1000 --clear-groups touch "$W/user" 2>/dev/null; echo "user: $?"
            """, allCapabilities: true, requires: ["/usr/bin/setpriv"])
    }

    /// nice, renice, taskset, ionice, chrt and ps set and read back nice
    /// values, affinity, I/O classes and policies.
    @Test func schedulingToolsSetAndReadBackWhatTheyAskFor() throws {
        try Self.expectSameAsNative("""
            nice -n 7 nice; nice -n 3 bash -c 'renice -n 5 -p $$ > /dev/null; nice'
            taskset -c 0 bash -c 'taskset -cp $$' | sed 's/[0-9]*.s current/N current/'
            ionice -c 2 -n 3 ionice; ionice -c 3 ionice
            chrt -b 0 bash -c 'chrt -p $$' | sed 's/[0-9]*.s current/N current/'
            chrt -i 0 bash -c 'chrt -p $$' | sed 's/[0-9]*.s current/N current/'
            chrt -m; nice -n 4 bash -c 'ps -o ni,cls,pri,rtprio,comm -p $$'; chrt -b 0 bash -c 'ps -o cls,pri -p $$'
            """, allCapabilities: true, requires: ["/usr/bin/taskset", "/usr/bin/ionice", "/usr/bin/chrt"])
    }

    /// PostgreSQL as a container runs it: initdb and the server as the
    /// postgres user (setpriv), its SysV shared memory segment and shared
    /// buffers, a client over a unix socket; the server's log is left out
    /// (times and PIDs).
    @Test func postgresInitializesServesQueriesAndStops() throws {
        try Self.expectSameAsNative(Self.postgresStart + """
            psql -h "$W/pg" -U postgres -Atc "create table t (a int primary key, b text);
                insert into t select n, md5(n::text) from generate_series(1, 5000) n;
                select count(*), sum(a), max(b) from t; select b from t where a = 4242;"
            psql -h "$W/pg" -U postgres -Atc "begin; update t set b = 'x' where a < 100; rollback; select count(*) from t where b = 'x';"
            """ + Self.postgresStop, allCapabilities: true, requires: Self.postgresPrograms)
    }

    /// A PostgreSQL server with its workers, checkpointed between a
    /// client's inserts: after the restore the server takes more, its
    /// earlier rows all there, and stops cleanly.
    @Test func postgresServingClientsSurvivesARestore() throws {
        try Self.expectCheckpointedSameAsNative(Self.postgresStart + """
            q() { psql -h "$W/pg" -U postgres -Atc "$1"; }
            q "create table t (a int primary key, b text)"
            for i in $(seq 1 12); do
                q "insert into t select n, md5(n::text) from generate_series($((i * 100 - 99)), $((i * 100))) n"
                q "select count(*), sum(a) from t"; sleep 0.2
            done
            q "select count(*), max(b) from t"
            """ + Self.postgresStop, after: 6, allCapabilities: true, requires: Self.postgresPrograms)
    }

    static let postgresBin = "/usr/lib/postgresql/15/bin"
    static let postgresPrograms = [postgresBin + "/postgres", "/usr/bin/psql", "/usr/bin/setpriv"]
    /// initdb and start a server for `$W/pg/data` on a unix socket in `$W/pg`, as the postgres user.
    static let postgresStart = """
        mkdir -p "$W/pg" && chown postgres "$W/pg" || exit 1
        as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
        as_postgres \(postgresBin)/initdb -D "$W/pg/data" -A trust -U postgres --no-sync > /dev/null; echo "initdb: $?"
        as_postgres \(postgresBin)/pg_ctl -D "$W/pg/data" -o "-k $W/pg -c listen_addresses= -c fsync=off" \\
            -l "$W/pg/log" -w start > /dev/null; echo "start: $?"

        """
    static let postgresStop = """

        as_postgres \(postgresBin)/pg_ctl -D "$W/pg/data" -m fast stop > /dev/null; echo "stop: $?"
        """

    @Test func bashProcessSubstitutionCoprocFifosAndTimeouts() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            diff <(seq 1 5) <(seq 1 6); echo "diff status $?"
            paste <(printf '%s\\n' a b c) <(printf '%s\\n' 1 2 3) > pasted; cat pasted
            while read -r line; do echo "got $line"; done < <(seq 3 -1 1)
            coproc upper { tr a-z A-Z; }
            echo "to the coprocess" >&"${upper[1]}"; exec {upper[1]}>&-; read -r reply <&"${upper[0]}"; wait "$upper_PID"
            echo "coproc: $reply"
            mkfifo pipe; (seq 1 3 > pipe) & cat pipe; wait
            if read -r -t 0.2 nothing < <(sleep 1); then echo "read got $nothing"; else echo "read timed out $?"; fi
            sleep 5 & slow=$!; (sleep 0.1; exit 5) & wait -n; echo "first done: $?"; kill "$slow"; wait
            seq 1 20 | xargs -P 4 -n 5 sh -c 'echo $(( $1 + $2 + $3 + $4 + $5 ))' sum | sort -n
            exec 5> fd5; echo "via fd 5" >&5; exec 5>&-; cat fd5
            echo "through /dev/stdin" | cat /dev/stdin; cat /proc/self/fd/0 <<< "a here string"
            seq 1 3 > >(wc -l > counted.part; mv counted.part counted); until [ -e counted ]; do sleep 0.05; done
            cat counted; echo | stat -L -c %F /dev/stdin
            printf '%s\\n' "${BASH_VERSINFO[0]}" | grep -q . && echo "bash version known"
            """)
    }

    /// sqlite3 in WAL mode: its -shm file is mapped MAP_SHARED by the
    /// writer and each reader, on a tmpfs and on a host directory.
    @Test(arguments: ["$W", "$D"])
    func sqlite3InWALModeSharesItsIndexMapping(_ directory: String) throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            db=\(directory)/wal.db
            /usr/bin/sqlite3 "$db" 'pragma journal_mode=wal;' 'create table t (k integer primary key, v integer);'
            for round in 1 2 3; do
                { echo 'begin;'; for i in $(seq 1 200); do echo "insert into t (v) values ($round * $i);"; done
                  echo 'commit;'; } | /usr/bin/sqlite3 "$db"
                /usr/bin/sqlite3 "$db" 'select count(*), sum(v) from t;' &
                wait
            done
            ls "$(dirname "$db")" | grep -c wal.db
            /usr/bin/sqlite3 "$db" 'pragma wal_checkpoint(truncate);' 'pragma integrity_check;' 'select max(v) from t;'
            """, hostData: directory == "$D", requires: ["/usr/bin/sqlite3"])
    }

    @Test func python3FileCopiesMmapAndMultiprocessing() throws {
        try Self.expectSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            /usr/bin/python3 - <<'EOF'
            import hashlib, mmap, multiprocessing, os, shutil
            with open("source", "wb") as f:
                f.write(b"".join(i.to_bytes(4, "little") for i in range(300000)))
            shutil.copyfile("source", "copy")
            with open("source", "rb") as a, open("copy2", "wb") as b:
                os.sendfile(b.fileno(), a.fileno(), 0, os.path.getsize("source"))
            print([hashlib.sha256(open(n, "rb").read()).hexdigest()[:16] for n in ("source", "copy", "copy2")])
            with open("copy", "r+b") as f:
                m = mmap.mmap(f.fileno(), 0)
                m[0:4] = b"MMAP"; m.flush(); m.close()
            print(open("copy", "rb").read(8))
            def square(n): return n * n
            if __name__ == "__main__":
                with multiprocessing.Pool(4) as pool:
                    print(sum(pool.map(square, range(1000))))
                queue = multiprocessing.Queue()
                child = multiprocessing.Process(target=queue.put, args=("from a child",))
                child.start(); print(queue.get()); child.join(); print("exit", child.exitcode)
            EOF
            """, requires: ["/usr/bin/python3"])
    }

    /// Runs `script` natively, then in a sandbox checkpointed once `lines`
    /// lines are out and restored: the output before and after together is
    /// the native run's.
    static func expectCheckpointedSameAsNative(_ script: String, after lines: Int, allCapabilities: Bool = false,
                                               requires programs: [String],
                                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        for program in [bash] + programs {
            try #require(FileManager.default.isExecutableFile(atPath: program), "\(program) is not installed",
                         sourceLocation: sourceLocation)
        }
        let nativeWork = try hostDirectory(in: "/dev/shm")
        defer { try? FileManager.default.removeItem(atPath: nativeWork) }
        let nativeCommand = command(script, work: nativeWork + "/w", data: nil)
        let native = try Fixtures.run(nativeCommand[0], Array(nativeCommand.dropFirst()))
        #expect(native.status == 0, "native: \(native.stderr)", sourceLocation: sourceLocation)
        let expected = native.stdout.split(separator: "\n").map(String.init)
        #expect(expected.count > lines + 1, "the native run is too short to checkpoint", sourceLocation: sourceLocation)

        let session = try CheckpointSession(command(script, work: "/tmp/w", data: nil))
        let mounts = hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }
            .map { ($0, $0, ["ro"]) }
        try BindMountTests.addBindMounts(mounts, to: session.bundle)
        if allCapabilities { try SandboxRun.grantAllCapabilities(bundle: session.bundle) }
        try session.runDetached("d1", output: "before")
        try session.waitForLines(lines, in: "before")
        let saved = try session.checkpoint("d1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)", sourceLocation: sourceLocation)
        let status = try session.restore("d2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))", sourceLocation: sourceLocation)
        #expect(!session.lines("after").isEmpty, "the checkpoint came after the end", sourceLocation: sourceLocation)
        #expect(session.lines("before") + session.lines("after") == expected, "\(session.errors(of: "after"))",
                sourceLocation: sourceLocation)
    }

    /// sqlite3 fed by a slow shell through a pipe, checkpointed inside its
    /// transaction on a tmpfs database (its journal open beside it): after
    /// the restore it takes more inserts, commits, and answers as natively.
    @Test func sqlite3InAnOpenTransactionSurvivesARestore() throws {
        try Self.expectCheckpointedSameAsNative("""
            mkdir -p "$W" && cd "$W" || exit 1
            exec 3>&1
            { echo 'create table t (k integer primary key, v text);'; echo 'begin;'
              for i in $(seq 1 30); do
                  for j in $(seq 1 20); do echo "insert into t (v) values ('r$i.$j');"; done
                  echo "fed $i" >&3; [ "$i" = 5 ] && ls "$W" >&3; sleep 0.1
              done
              echo 'commit;'; echo 'select count(*), count(distinct v), sum(k) from t;'
              echo "select v from t where k % 150 = 0 order by k;"; } | /usr/bin/sqlite3 test.db > answers
            echo "sqlite3 status $?"; cat answers; ls "$W"
            """, after: 4, requires: ["/usr/bin/sqlite3"])
    }

    /// bash's `while read` loop between seq and grep | wc, checkpointed midway
    /// through the stream: the counts after the restore are the native ones.
    @Test func bashInTheMiddleOfAPipelineSurvivesARestore() throws {
        try Self.expectCheckpointedSameAsNative("""
            exec 3>&1
            seq 1 20000 | while read -r n; do
                if ((n % 1000 == 0)); then echo "progress $n" >&3; sleep 0.1; fi
                echo "line $((n * 3))"
            done | grep 7 | wc -l
            echo "pipeline status ${PIPESTATUS[*]}"
            """, after: 4, requires: [])
    }
}

