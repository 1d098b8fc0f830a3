//! FFmpeg, loaded on the first video decode. Linking it would cost every process ~43 ms at start
//! (FFmpeg's codec libraries are ~137 shared objects, bound at load): commands that never decode a
//! video, `metric caption` among them, pay nothing. Struct layouts and constants come from
//! `ffmpeg-sys-next` (bindgen over the installed headers); the libraries opened are the sonames of
//! those headers' major versions, so layouts and code always match.
use crate::media::DecodeError;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::OnceLock;

use ffmpeg_sys_next as sys;
use libloading::Library;

pub use sys::{AVCodecContext, AVFormatContext, AVFrame, AVPacket, SwsContext};

/// The entry points video decoding uses, under their C names. Enum arguments are passed as `c_int`
/// (their C type).
#[allow(non_snake_case)]
pub struct Api {
    pub avformat_open_input: unsafe extern "C" fn(
        *mut *mut AVFormatContext,
        *const c_char,
        *const c_void,
        *mut *mut c_void,
    ) -> c_int,
    pub avformat_find_stream_info:
        unsafe extern "C" fn(*mut AVFormatContext, *mut *mut c_void) -> c_int,
    pub av_find_best_stream: unsafe extern "C" fn(
        *mut AVFormatContext,
        c_int,
        c_int,
        c_int,
        *mut *const c_void,
        c_int,
    ) -> c_int,
    pub avformat_close_input: unsafe extern "C" fn(*mut *mut AVFormatContext),
    pub av_read_frame: unsafe extern "C" fn(*mut AVFormatContext, *mut AVPacket) -> c_int,
    pub avcodec_alloc_context3: unsafe extern "C" fn(*const c_void) -> *mut AVCodecContext,
    pub avcodec_parameters_to_context:
        unsafe extern "C" fn(*mut AVCodecContext, *const sys::AVCodecParameters) -> c_int,
    pub avcodec_find_decoder: unsafe extern "C" fn(c_int) -> *const c_void,
    pub avcodec_open2:
        unsafe extern "C" fn(*mut AVCodecContext, *const c_void, *mut *mut c_void) -> c_int,
    pub avcodec_free_context: unsafe extern "C" fn(*mut *mut AVCodecContext),
    pub avcodec_send_packet: unsafe extern "C" fn(*mut AVCodecContext, *const AVPacket) -> c_int,
    pub avcodec_receive_frame: unsafe extern "C" fn(*mut AVCodecContext, *mut AVFrame) -> c_int,
    pub av_packet_alloc: unsafe extern "C" fn() -> *mut AVPacket,
    pub av_packet_free: unsafe extern "C" fn(*mut *mut AVPacket),
    pub av_packet_unref: unsafe extern "C" fn(*mut AVPacket),
    pub av_frame_alloc: unsafe extern "C" fn() -> *mut AVFrame,
    pub av_frame_free: unsafe extern "C" fn(*mut *mut AVFrame),
    pub av_frame_get_buffer: unsafe extern "C" fn(*mut AVFrame, c_int) -> c_int,
    pub av_strerror: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    pub av_log_set_level: unsafe extern "C" fn(c_int),
    pub sws_getContext: unsafe extern "C" fn(
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        *mut c_void,
        *mut c_void,
        *const f64,
    ) -> *mut SwsContext,
    pub sws_scale: unsafe extern "C" fn(
        *mut SwsContext,
        *const *const u8,
        *const c_int,
        c_int,
        c_int,
        *const *mut u8,
        *const c_int,
    ) -> c_int,
    pub sws_freeContext: unsafe extern "C" fn(*mut SwsContext),
    /// Keeps the libraries mapped for the life of the process.
    _libs: Vec<Library>,
}

pub const AVMEDIA_TYPE_VIDEO: c_int = sys::AVMediaType::AVMEDIA_TYPE_VIDEO as c_int;
pub const AV_PIX_FMT_RGB24: c_int = sys::AVPixelFormat::AV_PIX_FMT_RGB24 as c_int;
pub const SWS_BILINEAR: c_int = sys::SWS_BILINEAR as c_int;
pub const AVERROR_INVALIDDATA: c_int = sys::AVERROR_INVALIDDATA;

/// The sonames matching the headers `ffmpeg-sys-next` was built against.
pub fn sonames() -> [String; 4] {
    [
        format!("libavutil.so.{}", sys::LIBAVUTIL_VERSION_MAJOR),
        format!("libswscale.so.{}", sys::LIBSWSCALE_VERSION_MAJOR),
        format!("libavcodec.so.{}", sys::LIBAVCODEC_VERSION_MAJOR),
        format!("libavformat.so.{}", sys::LIBAVFORMAT_VERSION_MAJOR),
    ]
}

/// The loaded API, or why FFmpeg cannot be loaded (one line). Loaded once per process.
pub fn api() -> Result<&'static Api, DecodeError> {
    static API: OnceLock<Result<Api, DecodeError>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Api, DecodeError> {
    let mut libs = Vec::new();
    for name in sonames() {
        // SAFETY: FFmpeg's libraries run no initialisers with preconditions on load.
        let lib = unsafe { Library::new(&name) }
            .map_err(|e| format!("cannot load FFmpeg ({e}); install it with scripts/setup.sh"))?;
        libs.push(lib);
    }
    let [util, sws, codec, format] = &libs[..] else { unreachable!("four sonames") };
    macro_rules! sym {
        ($lib:expr, $name:ident) => {
            // SAFETY: the pointer type is the C declaration of the headers of this soname.
            *unsafe { $lib.get(concat!(stringify!($name), "\0").as_bytes()) }
                .map_err(|e| format!("FFmpeg lacks {}: {e}", stringify!($name)))?
        };
    }
    let api = Api {
        avformat_open_input: sym!(format, avformat_open_input),
        avformat_find_stream_info: sym!(format, avformat_find_stream_info),
        av_find_best_stream: sym!(format, av_find_best_stream),
        avformat_close_input: sym!(format, avformat_close_input),
        av_read_frame: sym!(format, av_read_frame),
        avcodec_alloc_context3: sym!(codec, avcodec_alloc_context3),
        avcodec_parameters_to_context: sym!(codec, avcodec_parameters_to_context),
        avcodec_find_decoder: sym!(codec, avcodec_find_decoder),
        avcodec_open2: sym!(codec, avcodec_open2),
        avcodec_free_context: sym!(codec, avcodec_free_context),
        avcodec_send_packet: sym!(codec, avcodec_send_packet),
        avcodec_receive_frame: sym!(codec, avcodec_receive_frame),
        av_packet_alloc: sym!(codec, av_packet_alloc),
        av_packet_free: sym!(codec, av_packet_free),
        av_packet_unref: sym!(codec, av_packet_unref),
        av_frame_alloc: sym!(util, av_frame_alloc),
        av_frame_free: sym!(util, av_frame_free),
        av_frame_get_buffer: sym!(util, av_frame_get_buffer),
        av_strerror: sym!(util, av_strerror),
        av_log_set_level: sym!(util, av_log_set_level),
        sws_getContext: sym!(sws, sws_getContext),
        sws_scale: sym!(sws, sws_scale),
        sws_freeContext: sym!(sws, sws_freeContext),
        _libs: Vec::new(),
    };
    // SAFETY: plain setter; only fatal messages reach stderr.
    unsafe { (api.av_log_set_level)(sys::AV_LOG_FATAL) };
    Ok(Api { _libs: libs, ..api })
}

impl Api {
    /// FFmpeg's message for an error code.
    pub fn error(&self, code: c_int) -> String {
        let mut buf = [0 as c_char; 128];
        // SAFETY: av_strerror writes at most `len` bytes, NUL-terminated.
        unsafe { (self.av_strerror)(code, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated above.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
    }
}

/// A path as FFmpeg's URL argument.
pub fn c_path(path: &std::path::Path) -> Result<CString, DecodeError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| DecodeError::from("path contains a NUL byte"))
}
