//! Encoding with the `ffmpeg` command-line tool (installed by scripts/setup.sh), fed raw RGB24.
//! Flags are fixed, single-threaded and bit-exact (no encoder version strings, no metadata), so
//! one ffmpeg build always writes the same bytes.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::plan::Container;
use super::scene::{Clip, Scene};

/// Output options every encode uses; part of the content hash.
pub const COMMON: &[&str] =
    &["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-threads", "1"];
const JPEG: &[&str] = &["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"];
const AVI: &[&str] =
    &["-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "4", "-pix_fmt", "yuv420p", "-f", "avi"];
const MP4: &[&str] =
    &["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-f", "mp4"];

/// Every encoder setting, for the content hash.
pub fn settings() -> String {
    [COMMON, JPEG, AVI, MP4].iter().map(|a| a.join(" ")).collect::<Vec<_>>().join(" | ")
}

/// Fails with one line when `ffmpeg` cannot be run.
pub fn check_ffmpeg() -> Result<()> {
    check_tool("ffmpeg")
}

fn check_tool(program: &str) -> Result<()> {
    match Command::new(program).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`{program} -version` failed ({s}); the built-in sample data needs FFmpeg: run scripts/setup.sh"),
        Err(e) => bail!("cannot run `{program}` ({e}); the built-in sample data needs FFmpeg: run scripts/setup.sh"),
    }
}

/// Runs ffmpeg reading `frames` (raw RGB24, `w`×`h`, rate `fps`) from stdin.
fn ffmpeg(
    w: u32,
    h: u32,
    fps: (u32, u32),
    frames: &[u8],
    output: &[&str],
    target: &Path,
) -> Result<()> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{w}x{h}"), "-r", &format!("{}/{}", fps.0, fps.1), "-i", "-"])
        .args(COMMON)
        .args(output)
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "cannot run `ffmpeg`; the built-in sample data needs FFmpeg: run scripts/setup.sh",
        )?;
    // A write error means ffmpeg stopped early; its own message says why.
    let _ = child.stdin.take().map(|mut s| s.write_all(frames));
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        bail!("ffmpeg failed writing {}: {}", target.display(), msg.trim().replace('\n', "; "));
    }
    Ok(())
}

/// Writes `scenes` (all `w`×`h`) as JPEGs with one ffmpeg run: frames go to numbered files in
/// `scratch`, then move to their targets.
pub fn jpegs(scratch: &Path, w: u32, h: u32, scenes: &[(PathBuf, Scene)]) -> Result<()> {
    std::fs::create_dir_all(scratch)?;
    let frames: Vec<u8> = scenes.iter().flat_map(|(_, s)| s.render()).collect();
    let mut args = JPEG.to_vec();
    args.extend(["-start_number", "0", "-f", "image2"]);
    ffmpeg(w, h, (8, 1), &frames, &args, &scratch.join("%05d.jpg"))?;
    for (i, (target, _)) in scenes.iter().enumerate() {
        let numbered = scratch.join(format!("{i:05}.jpg"));
        std::fs::rename(&numbered, target)
            .with_context(|| format!("ffmpeg wrote no {}", numbered.display()))?;
    }
    std::fs::remove_dir(scratch)?;
    Ok(())
}

/// Writes one clip.
pub fn video(target: &Path, clip: &Clip, container: Container) -> Result<()> {
    let args = match container {
        Container::Avi => AVI,
        Container::Mp4 => MP4,
    };
    ffmpeg(clip.scene.width, clip.scene.height, clip.fps, &clip.render(), args, target)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_ffmpeg_is_one_line_pointing_to_setup() {
        let e = super::check_tool("emu-eval-no-such-ffmpeg").unwrap_err().to_string();
        assert!(e.contains("scripts/setup.sh") && !e.contains('\n'), "{e}");
    }
}
