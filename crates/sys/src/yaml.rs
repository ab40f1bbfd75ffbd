//! libyaml's event parser over a byte string, one event at a time (the config's bounds
//! check walks a document with it before serde_norway loads it).

use std::mem::MaybeUninit;

use unsafe_libyaml_norway as unsafe_ffi;

/// What the walk needs of an event.
pub enum Kind {
    Scalar {
        anchor: Option<Vec<u8>>,
        len: usize,
    },
    /// A sequence or mapping starts.
    Start {
        anchor: Option<Vec<u8>>,
    },
    /// A sequence or mapping ends.
    End,
    Alias {
        anchor: Vec<u8>,
    },
    Other,
}

pub struct Event {
    pub kind: Kind,
    /// 0-based, as libyaml counts.
    pub line: usize,
    pub col: usize,
}

pub struct Parser<'a> {
    // Boxed: libyaml's parser must not move once initialised.
    sys: Box<MaybeUninit<unsafe_ffi::yaml_parser_t>>,
    _input: &'a [u8],
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8]) -> Parser<'a> {
        let mut sys = Box::new(MaybeUninit::<unsafe_ffi::yaml_parser_t>::uninit());
        // SAFETY: `sys` is a fresh allocation that stays in place until `drop` deletes the
        // parser; `input` outlives the parser (it borrows it for 'a).
        unsafe {
            let p = sys.as_mut_ptr();
            if unsafe_ffi::yaml_parser_initialize(p).fail {
                // Only fails when malloc does.
                panic!("libyaml could not allocate its parser");
            }
            unsafe_ffi::yaml_parser_set_encoding(p, unsafe_ffi::YAML_UTF8_ENCODING);
            unsafe_ffi::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
        }
        Parser { sys, _input: input, done: false }
    }

    /// The next event; `None` at the end of the stream or at a syntax error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut ev = MaybeUninit::<unsafe_ffi::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new`; an event that `yaml_parser_parse`
        // filled is read only through the union member its type names, then deleted.
        unsafe {
            let p = self.sys.as_mut_ptr();
            if unsafe_ffi::yaml_parser_parse(p, ev.as_mut_ptr()).fail {
                self.done = true;
                return None;
            }
            let e = &*ev.as_ptr();
            let anchor = |ptr: *const u8| (!ptr.is_null()).then(|| cstr(ptr).to_vec());
            let kind = match e.type_ {
                unsafe_ffi::YAML_STREAM_END_EVENT => {
                    self.done = true;
                    Kind::Other
                }
                unsafe_ffi::YAML_SCALAR_EVENT => {
                    Kind::Scalar { anchor: anchor(e.data.scalar.anchor), len: e.data.scalar.length as usize }
                }
                unsafe_ffi::YAML_SEQUENCE_START_EVENT => Kind::Start { anchor: anchor(e.data.sequence_start.anchor) },
                unsafe_ffi::YAML_MAPPING_START_EVENT => Kind::Start { anchor: anchor(e.data.mapping_start.anchor) },
                unsafe_ffi::YAML_SEQUENCE_END_EVENT | unsafe_ffi::YAML_MAPPING_END_EVENT => Kind::End,
                unsafe_ffi::YAML_ALIAS_EVENT => Kind::Alias { anchor: anchor(e.data.alias.anchor).unwrap_or_default() },
                _ => Kind::Other,
            };
            let event = Event { kind, line: e.start_mark.line as usize, col: e.start_mark.column as usize };
            unsafe_ffi::yaml_event_delete(ev.as_mut_ptr());
            Some(event)
        }
    }
}

/// The bytes of a NUL-terminated string libyaml owns.
///
/// # Safety
/// `ptr` points at a NUL-terminated string that lives as long as the returned slice.
unsafe fn cstr<'s>(ptr: *const u8) -> &'s [u8] {
    // SAFETY: the caller's promise.
    unsafe { std::ffi::CStr::from_ptr(ptr.cast()).to_bytes() }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and deleted only here.
        unsafe { unsafe_ffi::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}
