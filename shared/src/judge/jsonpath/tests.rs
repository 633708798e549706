use serde_json::{json, Value};

use super::*;

fn select(path: &str, document: &Value) -> Vec<Value> {
    JsonPath::parse(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .query(document, &mut Budget::unlimited())
        .unwrap()
        .into_iter()
        .cloned()
        .collect()
}

fn store() -> Value {
    json!({"store": {
        "book": [
            {"category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95},
            {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99},
            {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99},
            {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99}
        ],
        "bicycle": {"color": "red", "price": 399}
    }})
}

#[test]
fn the_rfc_examples_select_what_the_rfc_says() {
    let doc = store();
    assert_eq!(select("$.store.book[*].author", &doc).len(), 4);
    assert_eq!(select("$..author", &doc).len(), 4);
    assert_eq!(select("$.store.*", &doc).len(), 2);
    assert_eq!(select("$.store..price", &doc).len(), 5);
    assert_eq!(select("$..book[2].title", &doc), vec![json!("Moby Dick")]);
    assert_eq!(
        select("$..book[-1].title", &doc),
        vec![json!("The Lord of the Rings")]
    );
    assert_eq!(
        select("$..book[0,1].price", &doc),
        vec![json!(8.95), json!(12.99)]
    );
    assert_eq!(
        select("$..book[:2].price", &doc),
        vec![json!(8.95), json!(12.99)]
    );
    assert_eq!(select("$..book[?@.isbn].title", &doc).len(), 2);
    assert_eq!(
        select("$..book[?@.price < 10].title", &doc),
        vec![json!("Sayings of the Century"), json!("Moby Dick")]
    );
    assert_eq!(select("$..*", &doc).len(), 27);
}

#[test]
fn filters_compare_and_combine() {
    let doc = json!({"items": [{"n": 1, "s": "a"}, {"n": 2, "s": "b"}, {"n": 3}, {"n": "3"}]});
    assert_eq!(select("$.items[?@.n == 3]", &doc), vec![json!({"n": 3})]);
    assert_eq!(select("$.items[?@.n >= 2 && @.s]", &doc).len(), 1);
    assert_eq!(select("$.items[?@.n == 1 || @.n == 2].s", &doc).len(), 2);
    assert_eq!(select("$.items[?!@.s]", &doc).len(), 2);
    assert_eq!(select("$.items[?!(@.n < 3)]", &doc).len(), 2);
    assert_eq!(
        select("$.items[?@.missing == @.other]", &doc).len(),
        4,
        "Nothing == Nothing"
    );
    assert_eq!(
        select("$.items[?@.n == 1.0]", &doc).len(),
        1,
        "numbers compare by value"
    );
    assert_eq!(
        select("$.items[?@.s < 'b']", &doc),
        vec![json!({"n": 1, "s": "a"})]
    );
    assert_eq!(select("$[?@ == $.x]", &json!({"x": 1, "y": 1})).len(), 2);
}

#[test]
fn comparisons_follow_the_rfcs_table() {
    // RFC 9535 §2.3.5.2.2, the examples of Table 11.
    let doc = json!({"obj": {"x": "y"}, "arr": [2, 3], "n": 1});
    let true_of =
        |filter: &str| !select(&format!("$[?{filter}]"), &json!([doc.clone()])).is_empty();
    let cases = [
        ("$.absent1 == $.absent2", true),
        ("$.absent1 <= $.absent2", true),
        ("$.absent == 'g'", false),
        ("$.absent1 != $.absent2", false),
        ("$.absent != 'g'", true),
        ("1 <= 2", true),
        ("1 > 2", false),
        ("13 == '13'", false),
        ("'a' <= 'b'", true),
        ("'a' > 'b'", false),
        ("$.obj == $.arr", false),
        ("$.obj != $.arr", true),
        ("$.obj == $.obj", true),
        ("$.obj != $.obj", false),
        ("$.arr == $.arr", true),
        ("$.arr != $.arr", false),
        ("$.obj == 17", false),
        ("$.obj != 17", true),
        ("$.obj <= $.arr", false),
        ("$.obj < $.arr", false),
        ("$.obj <= $.obj", true),
        ("$.arr <= $.arr", true),
        ("1 <= $.arr", false),
        ("1 >= $.arr", false),
        ("1 > $.arr", false),
        ("1 < $.arr", false),
        ("true <= true", true),
        ("true > true", false),
    ];
    for (filter, expected) in cases {
        let filter = filter.replace("$.", "@.");
        assert_eq!(true_of(&filter), expected, "{filter}");
    }
}

#[test]
fn functions_follow_the_rfc() {
    let doc = json!({"a": [{"t": "abc", "l": [1, 2]}, {"t": "xbz", "l": []}, {"t": "a\nc"}]});
    assert_eq!(select("$.a[?length(@.t) == 3]", &doc).len(), 3);
    assert_eq!(select("$.a[?length(@.l) > 0]", &doc).len(), 1);
    assert_eq!(select("$.a[?count(@.*) == 2]", &doc).len(), 2);
    assert_eq!(
        select("$.a[?match(@.t, 'a.c')]", &doc).len(),
        1,
        ". is not a line break"
    );
    assert_eq!(select("$.a[?search(@.t, 'b')]", &doc).len(), 2);
    assert_eq!(select("$.a[?value(@.l[0]) == 1]", &doc).len(), 1);
    assert_eq!(
        select("$.a[?match(@.t, '[')]", &doc).len(),
        0,
        "an invalid pattern matches nothing"
    );
}

#[test]
fn names_in_brackets_take_any_text_and_escapes() {
    let doc = json!({"my-key": 1, "a'b": 2, "\u{263A}": 3, "tab\t": 4});
    assert_eq!(select("$['my-key']", &doc), vec![json!(1)]);
    assert_eq!(select("$[\"a'b\"]", &doc), vec![json!(2)]);
    assert_eq!(select("$['a\\'b']", &doc), vec![json!(2)]);
    assert_eq!(select("$['\\u263A']", &doc), vec![json!(3)]);
    assert_eq!(select("$['tab\\t']", &doc), vec![json!(4)]);
    assert_eq!(select("$.☺", &doc), vec![json!(3)]);
}

#[test]
fn invalid_expressions_say_where_and_why() {
    let cases = [
        ("$.a[", "at character 5: expected a selector"),
        ("a.b", "at character 1: a JSONPath starts with $"),
        ("$.a.", "expected a name or * after ."),
        (
            "$[?@.a == @.*]",
            "only a query that selects at most one value",
        ),
        (
            "$[?length(@.*) > 1]",
            "argument 1 of length() must be a value",
        ),
        ("$[?count(@.a)]", "count() gives a value, not true or false"),
        ("$[?foo(@)]", "\"foo\" is not a function"),
        ("$[01]", "no leading zeros"),
        ("$[?@.a == 1", "expected , or ]"),
        ("$['abc", "the string has no closing '"),
        ("$[9007199254740992]", "out of range"),
    ];
    for (text, expected) in cases {
        let err = JsonPath::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(
            err.starts_with(&format!("\"{text}\" is not a valid JSONPath (RFC 9535)")),
            "{err}"
        );
    }
}

#[test]
fn deeply_nested_filters_are_refused_not_overflowed() {
    let deep = format!("$[?{}@{}]", "@[?".repeat(40), "]".repeat(40));
    assert!(JsonPath::parse(&deep)
        .unwrap_err()
        .contains("nest more than"));
}

#[test]
fn a_query_that_needs_too_much_work_stops_with_a_reason() {
    // A deep, wide document: every node's descendants, for every node.
    let mut doc = json!([]);
    for _ in 0..100 {
        doc = json!([doc.clone(), doc, 1, 2, 3]);
        if doc.to_string().len() > 20_000 {
            break;
        }
    }
    let path = JsonPath::parse("$..*..*").unwrap();
    let mut budget = Budget::new(100_000, None);
    assert_eq!(
        path.query(&doc, &mut budget),
        Err(Exhausted::Steps(100_000))
    );
    let past = std::time::Instant::now() - std::time::Duration::from_millis(1);
    let mut timed = Budget::new(u64::MAX, Some(past));
    assert_eq!(path.query(&doc, &mut timed), Err(Exhausted::Time));
}
