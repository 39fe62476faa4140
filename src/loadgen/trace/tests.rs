use super::*;

const DIR: &str = "/work/shared/data/traces";

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/azure2019-sample-{name}.csv")).unwrap()
}

fn parse_str(inv: &str, dur: &str, mem: &str) -> Result<Trace, TraceError> {
    parse_trace(
        inv.as_bytes(),
        dur.as_bytes(),
        mem.as_bytes(),
        &Limits::default(),
        Selection::default(),
    )
}

const DUR: &str = "HashFunction,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n";
const MEM: &str = "HashFunction,AverageAllocatedMb\n";

#[test]
fn reads_the_sample_files() {
    if !Path::new(DIR).exists() {
        return;
    }
    let t = parse_trace(
        &sample("invocations"),
        &sample("durations"),
        &sample("memory"),
        &Limits::default(),
        Selection::default(),
    )
    .unwrap();
    assert_eq!(t.minutes_in_file, 60);
    assert_eq!(t.functions.len(), 500);
    let total: u64 = t
        .functions
        .iter()
        .flat_map(|f| &f.counts)
        .map(|&c| u64::from(c))
        .sum();
    assert_eq!(total, 40_491);
    assert!(
        t.functions
            .iter()
            .all(|f| f.durations.is_some() && f.memory_mb.is_some())
    );
    let f0 = &t.functions[0];
    assert_eq!((f0.key().as_str(), f0.trigger.as_str()), ("0", "timer"));
    assert_eq!(
        f0.durations,
        Some([23.0, 43.0, 107.0, 140.0, 280.0, 3317.0, 4084.0])
    );
    assert_eq!(f0.memory_mb, Some(189.0));
}

#[test]
fn selects_functions_and_minutes() {
    if !Path::new(DIR).exists() {
        return;
    }
    let sel = Selection {
        functions: Some(3),
        minutes: Some(2),
    };
    let t = parse_trace(
        &sample("invocations"),
        &sample("durations"),
        &sample("memory"),
        &Limits::default(),
        sel,
    )
    .unwrap();
    let counts: Vec<_> = t
        .functions
        .iter()
        .map(|f| (f.key(), f.counts.clone()))
        .collect();
    assert_eq!(
        counts,
        [
            ("0".into(), vec![1, 0]),
            ("1".into(), vec![10, 0]),
            ("2".into(), vec![2, 2])
        ]
    );
    // Functions not invoked in the chosen minutes are skipped.
    let sel = Selection {
        functions: Some(2),
        minutes: Some(1),
    };
    let t = parse_trace(
        &sample("invocations"),
        &sample("durations"),
        &sample("memory"),
        &Limits::default(),
        sel,
    )
    .unwrap();
    assert_eq!(
        t.functions.iter().map(Function::key).collect::<Vec<_>>(),
        ["0", "1"]
    );
    let too_many = Selection {
        functions: None,
        minutes: Some(61),
    };
    let e = parse_trace(
        &sample("invocations"),
        b"",
        b"",
        &Limits::default(),
        too_many,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("61 minutes asked for, the file has 60"),
        "{e}"
    );
}

#[test]
fn reads_the_full_trace_layout() {
    // Extra hash columns; the memory file is per app (no HashFunction), as in the full trace.
    let inv = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\no1,a1,f1,http,1,2,3\no1,a1,f2,timer,0,0,1\no2,a2,f1,queue,5,0,0\n";
    let dur = "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n\
               o2,a2,f1,1,1,1,1,1,2,3,4,5,6,7\no1,a1,f1,1,1,1,1,10,20,30,40,50,60,70\n";
    let mem = "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1\no1,a1,3,300.5,1\no2,a2,3,99,1\n";
    let t = parse_str(inv, dur, mem).unwrap();
    assert_eq!(t.functions.len(), 3);
    assert_eq!(t.functions[0].key(), "o1/a1/f1");
    assert_eq!(t.functions[0].durations.unwrap()[6], 70.0);
    assert_eq!(t.functions[2].durations.unwrap()[0], 1.0);
    assert_eq!(t.functions[1].durations, None);
    assert_eq!(
        t.functions.iter().map(|f| f.memory_mb).collect::<Vec<_>>(),
        [Some(300.5), Some(300.5), Some(99.0)]
    );
}

#[test]
fn percentiles_are_made_non_decreasing_and_duplicates_add_up() {
    let inv = "HashFunction,Trigger,1,2\nx,http,1,1\nx,http,2,0\n";
    let dur = format!("{DUR}x,5,4,6,6,7,9,8\n");
    let t = parse_str(inv, &dur, MEM).unwrap();
    assert_eq!(t.functions.len(), 1);
    assert_eq!(t.functions[0].counts, [3, 1]);
    assert_eq!(
        t.functions[0].durations,
        Some([5.0, 5.0, 6.0, 6.0, 7.0, 9.0, 9.0])
    );
}

fn err(inv: &str, dur: &str, mem: &str) -> String {
    parse_str(inv, dur, mem).unwrap_err().to_string()
}

#[test]
fn hostile_input_gives_precise_errors() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "HashFunction,1,2\nx,1,1\n",
            DUR,
            MEM,
            "invocations.csv:1: column Trigger: missing",
        ),
        (
            "Trigger,1\nhttp,1\n",
            DUR,
            MEM,
            "invocations.csv:1: column HashFunction: missing",
        ),
        (
            "HashFunction,Trigger\nx,http\n",
            DUR,
            MEM,
            "invocations.csv:1: column 1: missing",
        ),
        (
            "HashFunction,Trigger,1,3\nx,http,1,1\n",
            DUR,
            MEM,
            "invocations.csv:1: column 3: expected minute column 2",
        ),
        (
            "HashFunction,Trigger,1,2\nx,http,1,1\ny,http,1,abc\n",
            DUR,
            MEM,
            "invocations.csv:3: column 2: \"abc\" is not a count",
        ),
        (
            "HashFunction,Trigger,1,2\nx,http,1,-1\n",
            DUR,
            MEM,
            "invocations.csv:2: column 2: \"-1\" is not a count",
        ),
        (
            "HashFunction,Trigger,1,2\nx,http,1\n",
            DUR,
            MEM,
            "invocations.csv:2: 3 fields, the header has 4",
        ),
        (
            "HashFunction,Trigger,1\n,http,1\n",
            DUR,
            MEM,
            "invocations.csv:2: column HashFunction: empty",
        ),
        ("", DUR, MEM, "invocations.csv:1: empty file"),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            "HashFunction,percentile_Average_0\n",
            MEM,
            "durations.csv:1: column percentile_Average_1: missing",
        ),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            &format!("{DUR}x,1,2,3,NaN,5,6,7\n"),
            MEM,
            "durations.csv:2: column percentile_Average_50: NaN is out of range",
        ),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            &format!("{DUR}x,1,2,3,-4,5,6,7\n"),
            MEM,
            "durations.csv:2: column percentile_Average_50: -4 is out of range",
        ),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            DUR,
            "HashFunction,Mb\n",
            "memory.csv:1: column AverageAllocatedMb: missing",
        ),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            DUR,
            "HashApp,AverageAllocatedMb\n",
            "memory.csv:1: column HashApp: the invocations file has no such column",
        ),
        (
            "HashFunction,Trigger,1\nx,http,1\n",
            DUR,
            "HashFunction,AverageAllocatedMb\nx,1e400\n",
            "memory.csv:2: column AverageAllocatedMb: 1e400 is out of range",
        ),
    ];
    for (inv, dur, mem, want) in cases {
        let got = err(inv, dur, mem);
        assert!(got.contains(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn limits_bound_hostile_sizes() {
    let lim = Limits {
        max_line_bytes: 1000,
        max_columns: 50,
        max_rows: 3,
        max_field_bytes: 16,
        max_count: 100,
        max_total: 150,
        ..Limits::default()
    };
    let run = |inv: String| {
        parse_trace(
            inv.as_bytes(),
            DUR.as_bytes(),
            MEM.as_bytes(),
            &lim,
            Selection::default(),
        )
        .unwrap_err()
        .to_string()
    };
    // A huge row without a newline.
    let huge = format!("HashFunction,Trigger,1\nx,http,{}", "9".repeat(100_000));
    let e = run(huge);
    assert!(
        e.contains("invocations.csv:2: line longer than 1000 bytes"),
        "{e}"
    );
    let wide = format!(
        "HashFunction,Trigger,{}\n",
        (1..=60)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(run(wide).contains("invocations.csv:1: 62 columns, more than 50"));
    let rows = "HashFunction,Trigger,1\na,http,1\nb,http,1\nc,http,1\nd,http,1\n".to_string();
    assert!(run(rows).contains("invocations.csv:5: more than 3 rows"));
    let long_hash = format!("HashFunction,Trigger,1\n{},http,1\n", "h".repeat(17));
    assert!(
        run(long_hash).contains("invocations.csv:2: column HashFunction: 17 bytes, more than 16")
    );
    assert!(
        run("HashFunction,Trigger,1\nx,http,101\n".into())
            .contains("column 1: 101 is more than 100")
    );
    assert!(
        run("HashFunction,Trigger,1,2\nx,http,100,51\n".into())
            .contains("invocations.csv:2: more than 150 invocations")
    );
    let total = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    let e = parse_trace(
        b"HashFunction,Trigger,1\nx,http,1\n",
        b"",
        b"",
        &total,
        Selection::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 10 bytes"), "{e}");
}

#[test]
fn garbage_never_panics() {
    // A cheap stand-in for the fuzz target: mutated sample prefixes.
    let inv = b"HashFunction,Trigger,1,2\nx,http,1,2\ny,timer,0,3\n";
    for i in 0..inv.len() {
        for b in [b'\n', b',', b'"', 0xff, b'9'] {
            let mut v = inv.to_vec();
            v[i] = b;
            let _ = parse_trace(
                &v,
                DUR.as_bytes(),
                MEM.as_bytes(),
                &Limits::default(),
                Selection::default(),
            );
        }
    }
}
