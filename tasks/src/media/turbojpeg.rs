//! Minimal FFI to the system TurboJPEG library (libjpeg-turbo, Debian `libturbojpeg0-dev`): the
//! decoder Pillow uses, with its defaults (ISLOW IDCT, fancy upsampling), so pixels match Pillow's.
//! The `turbojpeg` crate needs libturbojpeg >= 3.0; Debian 12 ships 2.1.5, hence these few lines.
use crate::media::DecodeError;
use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void, CStr};

type TjHandle = *mut c_void;

#[link(name = "turbojpeg")]
extern "C" {
    fn tjInitDecompress() -> TjHandle;
    fn tjDecompressHeader3(
        handle: TjHandle,
        jpeg_buf: *const c_uchar,
        jpeg_size: c_ulong,
        width: *mut c_int,
        height: *mut c_int,
        jpeg_subsamp: *mut c_int,
        jpeg_colorspace: *mut c_int,
    ) -> c_int;
    fn tjDecompress2(
        handle: TjHandle,
        jpeg_buf: *const c_uchar,
        jpeg_size: c_ulong,
        dst_buf: *mut c_uchar,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjDestroy(handle: TjHandle) -> c_int;
    fn tjGetErrorStr2(handle: TjHandle) -> *mut c_char;
}

const TJPF_RGB: c_int = 0;
const TJPF_CMYK: c_int = 11;
const TJCS_CMYK: c_int = 3;
const TJCS_YCCK: c_int = 4;

/// The size and layout of a decoded JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: usize,
    pub height: usize,
    /// 3 (RGB; grayscale is replicated by libjpeg) or 4 (raw CMYK as stored).
    pub channels: usize,
}

struct Handle(TjHandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitDecompress and is destroyed once.
        unsafe { tjDestroy(self.0) };
    }
}

/// A TurboJPEG decompressor, kept between images (one per thread).
pub struct Decoder(Handle);

impl Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        // SAFETY: plain C call; a null handle is checked.
        let ptr = unsafe { tjInitDecompress() };
        if ptr.is_null() {
            return Err("cannot initialise libturbojpeg".into());
        }
        Ok(Decoder(Handle(ptr)))
    }

    fn error(&self) -> String {
        // SAFETY: tjGetErrorStr2 returns a NUL-terminated static or per-handle string.
        unsafe { CStr::from_ptr(tjGetErrorStr2(self.0 .0)).to_string_lossy().trim().to_owned() }
    }

    /// Width and height from the header, without decoding.
    pub fn size(&mut self, bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
        let (mut w, mut hgt, mut sub, mut cs) = (0, 0, 0, 0);
        // SAFETY: the handle is live; the header outputs are plain ints.
        if unsafe {
            tjDecompressHeader3(
                self.0 .0,
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                &mut w,
                &mut hgt,
                &mut sub,
                &mut cs,
            )
        } != 0
        {
            return Err(self.error().into());
        }
        Ok((w.max(0) as usize, hgt.max(0) as usize))
    }

    /// Decodes a JPEG into `out` (replacing its contents) as RGB, or raw CMYK for CMYK/YCCK
    /// files. Warnings (e.g. a truncated file) are errors, as Pillow raises "image file is
    /// truncated".
    pub fn decode_into(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<Header, DecodeError> {
        let h = self.0 .0;
        let (mut w, mut hgt, mut sub, mut cs) = (0, 0, 0, 0);
        // SAFETY: the handle is live; the header outputs are plain ints.
        if unsafe {
            tjDecompressHeader3(
                h,
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                &mut w,
                &mut hgt,
                &mut sub,
                &mut cs,
            )
        } != 0
        {
            return Err(self.error().into());
        }
        if w <= 0 || hgt <= 0 {
            return Err(DecodeError(format!("invalid size {w}x{hgt}")));
        }
        crate::limits::check_image_size(w as u64, hgt as u64)?;
        let (format, channels) =
            if cs == TJCS_CMYK || cs == TJCS_YCCK { (TJPF_CMYK, 4) } else { (TJPF_RGB, 3) };
        let (width, height) = (w as usize, hgt as usize);
        let pitch = width
            .checked_mul(channels)
            .filter(|&p| p <= c_int::MAX as usize)
            .ok_or("image too wide")?;
        let size = pitch.checked_mul(height).ok_or("image too large")?;
        out.clear();
        out.resize(size, 0);
        // SAFETY: `out` holds exactly pitch × height bytes, the layout libjpeg-turbo writes.
        let rc = unsafe {
            tjDecompress2(
                h,
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                out.as_mut_ptr(),
                w,
                pitch as c_int,
                hgt,
                format,
                0,
            )
        };
        if rc != 0 {
            return Err(self.error().into());
        }
        Ok(Header { width, height, channels })
    }
}
