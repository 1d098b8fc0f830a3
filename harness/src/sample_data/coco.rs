//! COCO Caption (Karpathy `dataset_coco.json`, datasets.md §4) and COCO text-to-image
//! (`annotations/captions_val2014.json`, §4.5).
use serde_json::{json, Value};
use tasks::rng::{sample_indices, SplitMix64};

use super::plan::{class_of, Ids, Plan};
use super::scene::{colour, shape, Scene};

/// `a` or `an` before `word`.
pub fn a(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Sentence patterns describing a scene, in the mixed case and punctuation of real captions.
fn caption_patterns(s: &Scene) -> Vec<String> {
    let (c, sh, size) = (colour(s.class), shape(s.class), s.size_word());
    vec![
        format!("{} {size} {c} {sh} {}", a(size), s.side()),
        format!("{} {c} {sh} drawn on a pale background.", capitalise(a(c))),
        format!("one {c} {sh} {} of the picture", s.height_word()),
        format!("the picture shows a single {c} {sh} "),
        format!("a plain light backdrop with {} {c} {sh} {}", a(c), s.side()),
        format!("An image of {} {size} {sh} colored {c}.", a(size)),
        format!("{} {c} {sh} sits {} against a blank background", a(c), s.height_word()),
        format!("a simple graphic of {} {c} {sh}", a(c)),
    ]
}

fn capitalise(w: &str) -> String {
    let mut cs = w.chars();
    cs.next().map(|f| f.to_uppercase().chain(cs).collect()).unwrap_or_default()
}

/// `n` distinct captions of a scene, chosen with `seed`.
pub fn captions(s: &Scene, n: usize, seed: u64) -> Vec<String> {
    let all = caption_patterns(s);
    sample_indices(all.len(), n, seed).into_iter().map(|i| all[i].clone()).collect()
}

/// Karpathy `tokens`: lower-cased words without punctuation.
fn tokens(raw: &str) -> Vec<String> {
    raw.to_lowercase()
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Image sizes: mostly landscape, some portrait and square (COCO sizes vary).
pub fn image_size(rng: &mut SplitMix64) -> (u32, u32) {
    *rng.pick(&[(160, 120), (160, 120), (120, 160), (128, 128)])
}

/// A random scene of `class` at a random size.
pub fn scene(rng: &mut SplitMix64, class: usize) -> Scene {
    let (w, h) = image_size(rng);
    Scene::random(rng, class, w, h)
}

/// COCO 2014 largest image id, for drawing ids.
pub const MAX_COCO_ID: u64 = 581_929;

/// Karpathy split sizes: (split, image folder, images).
const KARPATHY: [(&str, &str, usize); 4] = [
    ("test", "val2014", 10),
    ("val", "val2014", 2),
    ("train", "train2014", 12),
    ("restval", "val2014", 4),
];

/// `coco_caption/`: test 10 images, val 2, RICES pool 16 (train 12 in `train2014/` + restval 4
/// in `val2014/`).
pub fn caption(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0xC0C0_CA97);
    let mut ids = Ids::new(rng.next_u64());
    let (mut images, mut sentid) = (Vec::new(), 0u64);
    for (split, folder, count) in KARPATHY {
        for _ in 0..count {
            let s = scene(&mut rng, class_of(images.len(), 0));
            let cocoid = ids.draw(1, MAX_COCO_ID);
            let filename = format!("COCO_{folder}_{cocoid:012}.jpg");
            let imgid = images.len();
            let n = if imgid % 4 == 3 { 6 } else { 5 };
            let sentences: Vec<Value> = captions(&s, n, rng.next_u64())
                .into_iter()
                .map(|raw| {
                    sentid += 1;
                    json!({"tokens": tokens(&raw), "raw": raw, "imgid": imgid, "sentid": sentid - 1})
                })
                .collect();
            let sentids: Vec<u64> =
                sentences.iter().map(|x| x["sentid"].as_u64().unwrap_or(0)).collect();
            plan.jpeg(format!("coco_caption/{folder}/{filename}"), s);
            images.push(json!({
                "filepath": folder, "sentids": sentids, "filename": filename, "imgid": imgid,
                "split": split, "sentences": sentences, "cocoid": cocoid,
            }));
        }
    }
    plan.json("coco_caption/dataset_coco.json", &json!({"images": images, "dataset": "coco"}));
}

/// `coco_t2i/`: 12 val2014 caption annotations (2 per image, interleaved) over 6 reference images.
pub fn t2i(plan: &mut Plan) {
    let mut rng = SplitMix64::new(0x7E47_0001);
    let mut ids = Ids::new(rng.next_u64());
    let mut caption_ids = Ids::new(rng.next_u64());
    let (mut images, mut annotations) = (Vec::new(), Vec::new());
    for i in 0..6 {
        let s = scene(&mut rng, class_of(i, 0));
        let id = ids.draw(1, MAX_COCO_ID);
        let file_name = format!("COCO_val2014_{id:012}.jpg");
        plan.jpeg(format!("coco_t2i/val2014/{file_name}"), s);
        let date = format!(
            "2013-{:02}-{:02} {:02}:{:02}:{:02}",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        );
        images.push(json!({
            "license": 1 + rng.below(3), "file_name": file_name,
            "coco_url": format!("http://images.cocodataset.org/val2014/{file_name}"),
            "height": s.height, "width": s.width, "date_captured": date, "flickr_url": "", "id": id,
        }));
        for caption in captions(&s, 2, rng.next_u64()) {
            annotations.push(
                json!({"image_id": id, "id": caption_ids.draw(1, 900_000), "caption": caption}),
            );
        }
    }
    // The real file is not grouped by image.
    let order = sample_indices(annotations.len(), annotations.len(), rng.next_u64());
    let annotations: Vec<Value> = order.into_iter().map(|i| annotations[i].clone()).collect();
    let licenses: Vec<Value> = (1..=3)
        .map(
            |id| json!({"url": "", "id": id, "name": format!("emu-eval sample data licence {id}")}),
        )
        .collect();
    plan.json(
        "coco_t2i/annotations/captions_val2014.json",
        &json!({
            "info": {"description": "emu-eval sample data in the layout of COCO 2014 captions", "url": "", "version": "1.0",
                     "year": 2014, "contributor": "emu-eval", "date_created": "2015-01-01"},
            "images": images, "licenses": licenses, "annotations": annotations,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_name_colour_and_shape_and_tokens_drop_punctuation() {
        let mut rng = SplitMix64::new(5);
        let s = scene(&mut rng, 5);
        for c in captions(&s, 8, 1) {
            let t = tokens(&c);
            assert!(t.contains(&"orange".to_owned()) && t.contains(&"star".to_owned()), "{c}");
            assert!(t.iter().all(|w| w.chars().all(char::is_alphanumeric)));
        }
        assert!(captions(&s, 8, 1).iter().any(|c| c.starts_with("An orange")));
        assert_eq!(a("apple"), "an");
    }
}
