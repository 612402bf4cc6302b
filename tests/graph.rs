//! Flow-graph export: `Model::write_graph_dot` / `graph_dot` and `flowmlp_graph_dot`
//! draw every node and the shape of every edge from the live configuration, follow
//! the buffer rules, allocate nothing, and the committed picture of the course's
//! network (`docs/course-graph.dot`, rendered to `docs/course-graph.svg`) is current.

#[path = "common/counting.rs"]
mod counting;

use flowmlp::ffi::{self, flowmlp_status};
use flowmlp::{Config, Error, Loss, Model};

/// The course's network as the demo trains it: 10 -> 64 -> 1, batches of 32.
fn course() -> Model {
    Model::new(&Config::new(10, &[64], 1).max_batch(32).seed(2024)).unwrap()
}

fn dot(model: &Model) -> String {
    let mut s = String::new();
    model.write_graph_dot(&mut s).unwrap();
    s
}

/// The edges `a -> b` of a DOT text with their labels.
fn edges(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (lhs, rest) = l.trim().split_once(" -> ")?;
            let (rhs, attrs) = rest.split_once(" [label=\"")?;
            let label = attrs.strip_suffix("\"];")?;
            Some((lhs.to_string(), rhs.to_string(), label.to_string()))
        })
        .collect()
}

fn has_edge(text: &str, from: &str, to: &str, label: &str) -> bool {
    edges(text)
        .iter()
        .any(|(a, b, l)| a == from && b == to && l == label)
}

#[test]
fn course_network_has_every_node_and_edge_shape() {
    let text = dot(&course());
    assert!(text.starts_with("digraph flowmlp {\n") && text.ends_with("}\n"));
    assert!(text.is_ascii());
    assert!(text.contains("10 -> 64 -> 1, mean squared error loss"));
    assert!(text.contains("training: 1..32"));
    for node in [
        "X [", "W1 [", "b1 [", "mm1 [", "add1 [", "relu1 [", "Wo [", "bo [", "mmo [", "addo [",
        "Y [", "loss [", "L [",
    ] {
        assert!(text.contains(&format!("\n  {node}")), "node {node}\n{text}");
    }
    let want = [
        ("X", "mm1", "X: n x 10"),
        ("W1", "mm1", "64 x 10"),
        ("mm1", "add1", "n x 64"),
        ("b1", "add1", "64"),
        ("add1", "relu1", "Z_1: n x 64"),
        ("relu1", "mmo", "H_1: n x 64"),
        ("Wo", "mmo", "1 x 64"),
        ("mmo", "addo", "n x 1"),
        ("bo", "addo", "1"),
        ("addo", "loss", "Yhat: n x 1"),
        ("Y", "loss", "Y: n x 1"),
        ("loss", "L", "scalar"),
    ];
    for (a, b, l) in want {
        assert!(has_edge(&text, a, b, l), "edge {a} -> {b} [{l}]\n{text}");
    }
    assert_eq!(edges(&text).len(), want.len(), "{text}");
}

#[test]
fn deep_network_chains_layers_with_their_shapes() {
    let cfg = Config::new(5, &[17, 9, 33], 3)
        .max_batch(8)
        .loss(Loss::CrossEntropy);
    let text = dot(&Model::new(&cfg).unwrap());
    assert!(text.contains("5 -> 17 -> 9 -> 33 -> 3, softmax cross-entropy loss"));
    assert!(text.contains("log softmax(Yhat)"));
    let want = [
        ("X", "mm1", "X: n x 5"),
        ("W1", "mm1", "17 x 5"),
        ("b1", "add1", "17"),
        ("relu1", "mm2", "H_1: n x 17"),
        ("W2", "mm2", "9 x 17"),
        ("mm2", "add2", "n x 9"),
        ("add2", "relu2", "Z_2: n x 9"),
        ("relu2", "mm3", "H_2: n x 9"),
        ("W3", "mm3", "33 x 9"),
        ("b3", "add3", "33"),
        ("relu3", "mmo", "H_3: n x 33"),
        ("Wo", "mmo", "3 x 33"),
        ("bo", "addo", "3"),
        ("addo", "loss", "Yhat: n x 3"),
        ("Y", "loss", "Y: n x 3"),
    ];
    for (a, b, l) in want {
        assert!(has_edge(&text, a, b, l), "edge {a} -> {b} [{l}]\n{text}");
    }
    // 5 edges per hidden layer, 4 for the output layer, 3 for the loss.
    assert_eq!(edges(&text).len(), 3 * 5 + 4 + 3, "{text}");
    assert!(text.contains("label=\"matmul\\nH_2 W_3^T\""));
}

#[test]
fn graph_dot_follows_the_buffer_rules_and_allocates_nothing() {
    let model = course();
    let text = dot(&model);
    let size = model.graph_dot_size();
    assert_eq!(size, text.len() + 1);

    let mut buf = vec![0xAAu8; size + 10];
    let (got, seen) = counting::watched(|| model.graph_dot(&mut buf));
    assert_eq!(got, Ok(size));
    assert_eq!(seen.allocs, 0, "graph_dot allocated");
    assert_eq!(&buf[..size - 1], text.as_bytes());
    assert_eq!(buf[size - 1], 0);
    assert!(buf[size..].iter().all(|&b| b == 0xAA));

    // One byte short: refused, nothing written.
    let mut short = vec![0x55u8; size - 1];
    assert_eq!(model.graph_dot(&mut short), Err(Error::InvalidArgument));
    assert!(short.iter().all(|&b| b == 0x55));
    assert_eq!(model.graph_dot(&mut []), Err(Error::InvalidArgument));

    let (_, seen) = counting::watched(|| model.graph_dot_size());
    assert_eq!(seen.allocs, 0, "graph_dot_size allocated");
}

#[test]
fn c_graph_dot_reports_the_size_and_refuses_short_buffers() {
    let cfg = ffi::flowmlp_config {
        n_inputs: 10,
        n_outputs: 1,
        n_hidden: 1,
        hidden: [64, 0, 0, 0, 0, 0, 0, 0],
        max_batch: 32,
        seed: 2024,
        isa: 0,
        loss: 0,
    };
    let mut handle = core::ptr::null_mut();
    // SAFETY: a valid config and out pointer.
    let st = unsafe { ffi::flowmlp_create(&cfg, &mut handle) };
    assert_eq!(st, flowmlp_status::FLOWMLP_OK);
    let handle: *mut ffi::flowmlp_model = handle;
    let want = {
        let mut n = 0usize;
        // SAFETY: a live handle; NULL buffer with cap 0 is the size query.
        let st = unsafe { ffi::flowmlp_graph_dot(handle, core::ptr::null_mut(), 0, &mut n) };
        assert_eq!(st, flowmlp_status::FLOWMLP_OK);
        n
    };
    assert!(want > 100);

    let mut buf = vec![b'#' as core::ffi::c_char; want];
    let mut written = 0usize;
    // One byte short: INVALID_ARGUMENT, the size reported, nothing written.
    // SAFETY: buf holds want bytes.
    let st = unsafe { ffi::flowmlp_graph_dot(handle, buf.as_mut_ptr(), want - 1, &mut written) };
    assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_INVALID_ARGUMENT);
    assert_eq!(written, want);
    assert!(buf.iter().all(|&c| c == b'#' as core::ffi::c_char));
    // NULL buffer with a capacity: NULL_POINTER, the size still reported.
    written = 0;
    // SAFETY: as above.
    let st = unsafe { ffi::flowmlp_graph_dot(handle, core::ptr::null_mut(), 5, &mut written) };
    assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_NULL_POINTER);
    assert_eq!(written, want);
    // NULL model: NULL_POINTER, written untouched.
    written = 7;
    // SAFETY: NULL model is allowed.
    let st =
        unsafe { ffi::flowmlp_graph_dot(core::ptr::null(), buf.as_mut_ptr(), want, &mut written) };
    assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_NULL_POINTER);
    assert_eq!(written, 7);
    // Exact size, written may be NULL.
    // SAFETY: buf holds want bytes.
    let st =
        unsafe { ffi::flowmlp_graph_dot(handle, buf.as_mut_ptr(), want, core::ptr::null_mut()) };
    assert_eq!(st, flowmlp_status::FLOWMLP_OK);
    // SAFETY: NUL-terminated by the call.
    let text = unsafe { core::ffi::CStr::from_ptr(buf.as_ptr()) };
    assert_eq!(text.to_bytes().len(), want - 1);
    assert!(text.to_str().unwrap().starts_with("digraph flowmlp {"));

    let mut cfg = core::mem::MaybeUninit::<ffi::flowmlp_config>::zeroed();
    // SAFETY: a live handle and a writable config.
    let st = unsafe { ffi::flowmlp_get_config(handle, cfg.as_mut_ptr()) };
    assert_eq!(st, flowmlp_status::FLOWMLP_OK);
    // SAFETY: written by the successful call.
    let cfg = unsafe { cfg.assume_init() };
    assert_eq!((cfg.n_inputs, cfg.n_hidden, cfg.n_outputs), (10, 1, 1));
    assert_eq!(cfg.hidden, [64, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!((cfg.max_batch, cfg.seed, cfg.loss), (32, 2024, 0));
    assert_ne!(cfg.isa, 0, "isa is resolved, never AUTO");
    // SAFETY: the handle is live and given up here.
    unsafe { ffi::flowmlp_destroy(handle) };
}

/// `docs/course-graph.dot` is what the course's network writes now; when it is not,
/// regenerate it and the SVG with
/// `FLOWMLP_BLESS=1 cargo test --test graph && dot -Tsvg docs/course-graph.dot -o docs/course-graph.svg`.
#[test]
#[cfg_attr(miri, ignore = "Miri is isolated from the file system")]
fn committed_course_graph_is_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/docs/course-graph.dot");
    let text = dot(&course());
    if std::env::var_os("FLOWMLP_BLESS").is_some() {
        std::fs::create_dir_all(format!("{root}/docs")).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{path} is stale: run `FLOWMLP_BLESS=1 cargo test --test graph` and \
         `dot -Tsvg docs/course-graph.dot -o docs/course-graph.svg`, then commit both"
    );
    let svg = std::fs::read_to_string(format!("{root}/docs/course-graph.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Z_1: n x 64"));
}
