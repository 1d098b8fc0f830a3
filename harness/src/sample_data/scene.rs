//! What every sample image and video shows: one coloured shape on a light, slightly noisy
//! background. Six classes pair a colour with a shape, so texts that name the colour or the shape
//! agree with the pixels, and nearest neighbours by appearance share a class.
use tasks::rng::SplitMix64;

/// Number of colour × shape classes.
pub const CLASSES: usize = 6;
/// Colour name and RGB of each class.
pub const COLOURS: [(&str, [u8; 3]); CLASSES] = [
    ("red", [205, 35, 40]),
    ("blue", [35, 75, 205]),
    ("green", [40, 150, 55]),
    ("yellow", [235, 200, 25]),
    ("purple", [125, 45, 165]),
    ("orange", [240, 125, 20]),
];
/// Shape name of each class.
pub const SHAPES: [&str; CLASSES] = ["circle", "square", "triangle", "diamond", "cross", "star"];

pub fn colour(class: usize) -> &'static str {
    COLOURS[class].0
}

pub fn shape(class: usize) -> &'static str {
    SHAPES[class]
}

/// One shape on a background. Positions and radius are in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scene {
    pub class: usize,
    pub width: u32,
    pub height: u32,
    pub cx: i32,
    pub cy: i32,
    pub radius: i32,
    pub background: [u8; 3],
    /// Under-exposed (VizWiz "unanswerable" photos): everything at a quarter of its brightness.
    pub dark: bool,
    /// Seed of the background noise.
    pub seed: u64,
}

impl Scene {
    /// A random placement of `class` in a `width`×`height` frame.
    pub fn random(rng: &mut SplitMix64, class: usize, width: u32, height: u32) -> Self {
        let short = width.min(height) as i32;
        let radius = short / 6 + rng.below((short / 6) as usize) as i32;
        let mut span = |len: u32| {
            let free = (len as i32 - 2 * radius).max(1);
            radius + rng.below(free as usize) as i32
        };
        let cx = span(width);
        let cy = span(height);
        let background = [0; 3].map(|_| 212 + rng.below(38) as u8);
        Scene {
            class,
            width,
            height,
            cx,
            cy,
            radius,
            background,
            dark: false,
            seed: rng.next_u64(),
        }
    }

    /// "on the left", "in the middle", "on the right" (by the centre's horizontal third).
    pub fn side(&self) -> &'static str {
        match (3 * self.cx / self.width as i32).clamp(0, 2) {
            0 => "on the left",
            1 => "in the middle",
            _ => "on the right",
        }
    }

    /// "near the top" / "near the bottom" by the centre's vertical half.
    pub fn height_word(&self) -> &'static str {
        if 2 * self.cy < self.height as i32 {
            "near the top"
        } else {
            "near the bottom"
        }
    }

    /// "small" or "large" relative to the frame.
    pub fn size_word(&self) -> &'static str {
        if 4 * self.radius < self.width.min(self.height) as i32 {
            "small"
        } else {
            "large"
        }
    }

    /// RGB24 pixels, row-major.
    pub fn render(&self) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rng = SplitMix64::new(self.seed);
        let fill = COLOURS[self.class].1;
        let r = self.radius as f32;
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let dx = (x as f32 + 0.5 - self.cx as f32) / r;
                let dy = (y as f32 + 0.5 - self.cy as f32) / r;
                let base = if inside(self.class, dx, dy) { fill } else { self.background };
                let noise = rng.below(13) as i32 - 6;
                for c in base {
                    let v = (c as i32 + noise).clamp(0, 255);
                    out.push(if self.dark { (v / 4) as u8 } else { v as u8 });
                }
            }
        }
        out
    }
}

/// Whether the point `(dx, dy)` (in radii from the centre, y down) lies in the class's shape.
pub fn inside(class: usize, dx: f32, dy: f32) -> bool {
    match SHAPES[class] {
        "circle" => dx * dx + dy * dy <= 1.0,
        "square" => dx.abs() <= 0.8 && dy.abs() <= 0.8,
        "triangle" => in_polygon(&[(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)], dx, dy),
        "diamond" => dx.abs() + dy.abs() <= 1.0,
        "cross" => (dx.abs() <= 0.3 && dy.abs() <= 1.0) || (dy.abs() <= 0.3 && dx.abs() <= 1.0),
        _ => in_polygon(&star(), dx, dy),
    }
}

/// A five-pointed star, first point up.
fn star() -> [(f32, f32); 10] {
    std::array::from_fn(|i| {
        let radius = if i % 2 == 0 { 1.0 } else { 0.45 };
        let angle = std::f32::consts::PI * i as f32 / 5.0;
        (radius * angle.sin(), -radius * angle.cos())
    })
}

/// Even-odd rule.
fn in_polygon(vertices: &[(f32, f32)], x: f32, y: f32) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for (i, &(xi, yi)) in vertices.iter().enumerate() {
        let (xj, yj) = vertices[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// A clip: the scene's shape slides horizontally from `x_start` to `x_end` over `frames` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Clip {
    pub scene: Scene,
    pub frames: u32,
    pub x_start: i32,
    pub x_end: i32,
    /// Frame rate as a fraction (e.g. 30000/1001).
    pub fps: (u32, u32),
}

impl Clip {
    /// A left-to-right (or right-to-left) slide of `class`.
    pub fn random(
        rng: &mut SplitMix64,
        class: usize,
        width: u32,
        height: u32,
        frames: u32,
        fps: (u32, u32),
    ) -> Self {
        let scene = Scene::random(rng, class, width, height);
        let (a, b) = (scene.radius, width as i32 - scene.radius);
        let (x_start, x_end) = if rng.below(4) == 0 { (b, a) } else { (a, b) };
        Clip { scene, frames, x_start, x_end, fps }
    }

    /// "right" or "left": where the shape goes.
    pub fn direction(&self) -> &'static str {
        if self.x_end > self.x_start {
            "right"
        } else {
            "left"
        }
    }

    /// Frame `t` as a scene (its own noise seed).
    pub fn frame(&self, t: u32) -> Scene {
        let span = (self.frames.max(2) - 1) as i32;
        let cx = self.x_start + (self.x_end - self.x_start) * t as i32 / span;
        Scene { cx, seed: self.scene.seed.wrapping_add(t as u64), ..self.scene }
    }

    /// All frames, RGB24, concatenated.
    pub fn render(&self) -> Vec<u8> {
        (0..self.frames).flat_map(|t| self.frame(t).render()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_holds_its_centre_and_not_the_corners() {
        for class in 0..CLASSES {
            assert!(inside(class, 0.0, 0.05), "{}", shape(class));
            assert!(!inside(class, 0.99, 0.99), "{}", shape(class));
            assert!(!inside(class, -0.99, -0.99), "{}", shape(class));
        }
        // The star's inner notches are background; the diamond's corners too.
        assert!(!inside(5, 0.0, 0.6));
        assert!(!inside(3, 0.6, 0.6));
        assert!(inside(1, 0.6, 0.6));
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // `class` is the scene's class, not only an index
    fn render_paints_the_class_colour_at_the_centre_on_a_light_background() {
        let mut rng = SplitMix64::new(1);
        for class in 0..CLASSES {
            let s = Scene::random(&mut rng, class, 160, 120);
            let px = s.render();
            assert_eq!(px.len(), 160 * 120 * 3);
            assert_eq!(px, s.render(), "deterministic");
            let at = |x: i32, y: i32| &px[(y as usize * 160 + x as usize) * 3..][..3];
            let want = COLOURS[class].1;
            let centre = at(s.cx, s.cy);
            assert!(
                centre.iter().zip(want).all(|(&a, b)| (a as i32 - b as i32).abs() <= 6),
                "{centre:?}"
            );
            // A corner far from the shape is light.
            let (fx, fy) = if s.cx < 80 {
                (159, if s.cy < 60 { 119 } else { 0 })
            } else {
                (0, if s.cy < 60 { 119 } else { 0 })
            };
            assert!(at(fx, fy).iter().all(|&v| v >= 200), "{:?}", at(fx, fy));
        }
    }

    #[test]
    fn clip_slides_between_its_end_points() {
        let mut rng = SplitMix64::new(2);
        let c = Clip::random(&mut rng, 0, 80, 60, 16, (25, 1));
        assert_eq!(c.frame(0).cx, c.x_start);
        assert_eq!(c.frame(15).cx, c.x_end);
        assert_eq!(c.render().len(), 16 * 80 * 60 * 3);
        assert_ne!(c.frame(0).seed, c.frame(1).seed);
    }
}
