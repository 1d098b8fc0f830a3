use super::*;

fn tok(s: &str) -> String {
    tokenize_line(s)
}

#[test]
fn dev_oracle_dump() {
    if let Ok(p) = std::env::var("PTB_DEV_IN") {
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<String> = serde_json::from_str(&text).unwrap();
        let out = tokenize_captions(&lines);
        std::fs::write(format!("{p}.rust.json"), serde_json::to_string(&out).unwrap()).unwrap();
    }
}

#[test]
fn smoke() {
    assert_eq!(tok("A man's dog (brown) sits on a bench."), "a man 's dog -lrb- brown -rrb- sits on a bench");
}
