//! Text encodings of DBF (and other legacy) files: the labels found in .cpg files, the
//! DBF language-driver byte, and decoding to UTF-8 that fails loudly instead of
//! replacing characters.

use std::borrow::Cow;

use oem_cp::code_table as oem;

/// A decoder from a legacy encoding to UTF-8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TextEncoding {
    Utf8,
    /// True ISO-8859-1 (every byte is the code point of the same number), as GDAL
    /// means it; WHATWG's "latin1" label is windows-1252, which differs in 0x80..0x9F.
    Latin1,
    Whatwg(&'static encoding_rs::Encoding),
    /// A DOS (OEM) code page: the upper half of the byte range.
    Oem(u16, &'static [char; 128]),
    OemPartial(u16, &'static [Option<char>; 128]),
}

impl TextEncoding {
    /// Parses a .cpg value or a caller's label ("UTF-8", "UTF8", "ANSI 1252", "88596",
    /// "ISO-8859-1", "cp850", "Big5", ...). `None` when the label is unknown.
    pub fn from_label(label: &str) -> Option<Self> {
        let trimmed = label.trim().trim_start_matches('\u{feff}').trim();
        let upper = trimmed.to_ascii_uppercase();
        let compact: String = upper
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .collect();
        if compact.is_empty() {
            return None;
        }
        if matches!(compact.as_str(), "UTF8" | "65001" | "UNICODE") {
            return Some(TextEncoding::Utf8);
        }
        if matches!(
            compact.as_str(),
            "LATIN1" | "L1" | "ISO88591" | "88591" | "28591" | "ISOLATIN1" | "ISOIR100"
        ) {
            return Some(TextEncoding::Latin1);
        }
        // "ANSI 1252", "CP1252", "WINDOWS1252", "IBM850", "OEM 850" and bare numbers.
        for prefix in ["ANSI", "CP", "WINDOWS", "IBM", "OEM", "DOS", "MS"] {
            if let Some(number) = compact.strip_prefix(prefix) {
                if let Ok(code) = number.parse::<u32>() {
                    return Self::from_code_page(code);
                }
            }
        }
        if let Some(part) = compact
            .strip_prefix("ISO8859")
            .or_else(|| compact.strip_prefix("8859"))
        {
            return part.parse::<u32>().ok().and_then(Self::iso_8859);
        }
        if let Ok(code) = compact.parse::<u32>() {
            // ESRI writes ISO-8859-x as 8859x in .cpg files ("88596", "885915").
            if let Some(part) = compact.strip_prefix("8859") {
                return part.parse::<u32>().ok().and_then(Self::iso_8859);
            }
            return Self::from_code_page(code);
        }
        let encoding = encoding_rs::Encoding::for_label(trimmed.as_bytes())?;
        if encoding == encoding_rs::UTF_8 {
            Some(TextEncoding::Utf8)
        } else if encoding.is_ascii_compatible() {
            Some(TextEncoding::Whatwg(encoding))
        } else {
            // UTF-16 and the like cannot hold fixed-width DBF fields.
            None
        }
    }

    fn iso_8859(part: u32) -> Option<Self> {
        if part == 1 {
            return Some(TextEncoding::Latin1);
        }
        let label = format!("iso-8859-{part}");
        encoding_rs::Encoding::for_label(label.as_bytes()).map(TextEncoding::Whatwg)
    }

    /// A Windows / DOS / Mac code page number.
    pub fn from_code_page(code: u32) -> Option<Self> {
        let oem_table = |code: u16, table| Some(TextEncoding::Oem(code, table));
        match code {
            437 => oem_table(437, &oem::DECODING_TABLE_CP437),
            737 => oem_table(737, &oem::DECODING_TABLE_CP737),
            775 => oem_table(775, &oem::DECODING_TABLE_CP775),
            850 => oem_table(850, &oem::DECODING_TABLE_CP850),
            852 => oem_table(852, &oem::DECODING_TABLE_CP852),
            855 => oem_table(855, &oem::DECODING_TABLE_CP855),
            857 => Some(TextEncoding::OemPartial(857, &oem::DECODING_TABLE_CP857)),
            858 => oem_table(858, &oem::DECODING_TABLE_CP858),
            860 => oem_table(860, &oem::DECODING_TABLE_CP860),
            861 => oem_table(861, &oem::DECODING_TABLE_CP861),
            862 => oem_table(862, &oem::DECODING_TABLE_CP862),
            863 => oem_table(863, &oem::DECODING_TABLE_CP863),
            864 => Some(TextEncoding::OemPartial(864, &oem::DECODING_TABLE_CP864)),
            865 => oem_table(865, &oem::DECODING_TABLE_CP865),
            866 => Some(TextEncoding::Whatwg(encoding_rs::IBM866)),
            869 => oem_table(869, &oem::DECODING_TABLE_CP869),
            874 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_874)),
            932 => Some(TextEncoding::Whatwg(encoding_rs::SHIFT_JIS)),
            936 => Some(TextEncoding::Whatwg(encoding_rs::GBK)),
            949 => Some(TextEncoding::Whatwg(encoding_rs::EUC_KR)),
            950 => Some(TextEncoding::Whatwg(encoding_rs::BIG5)),
            1250 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1250)),
            1251 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1251)),
            1252 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1252)),
            1253 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1253)),
            1254 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1254)),
            1255 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1255)),
            1256 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1256)),
            1257 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1257)),
            1258 => Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1258)),
            10000 => Some(TextEncoding::Whatwg(encoding_rs::MACINTOSH)),
            10007 => Some(TextEncoding::Whatwg(encoding_rs::X_MAC_CYRILLIC)),
            20866 => Some(TextEncoding::Whatwg(encoding_rs::KOI8_R)),
            21866 => Some(TextEncoding::Whatwg(encoding_rs::KOI8_U)),
            28591 => Some(TextEncoding::Latin1),
            28592..=28599 | 28603 | 28605 => Self::iso_8859(code - 28590),
            65001 => Some(TextEncoding::Utf8),
            _ => None,
        }
    }

    /// The DBF header's language driver id (byte 29), mapped as GDAL maps it.
    /// `None` for 0 (not set) and for ids without a known code page.
    pub fn from_ldid(ldid: u8) -> Option<Self> {
        let code_page = match ldid {
            1 | 9 | 11 | 13 | 15 | 17 | 21 | 24 | 25 | 27 => 437,
            2 | 10 | 14 | 16 | 18 | 20 | 22 | 26 | 29 | 37 | 55 => 850,
            3 | 88 | 89 => 1252,
            4 => 10000,
            8 | 23 | 102 => 865,
            19 | 123 => 932,
            28 | 108 => 863,
            31 | 34 | 35 | 64 | 100 | 135 => 852,
            36 => 860,
            38 | 101 => 866,
            77 | 122 => 936,
            78 | 121 => 949,
            79 | 120 => 950,
            80 | 124 => 874,
            87 => return Some(TextEncoding::Latin1),
            103 => 861,
            106 | 134 => 737,
            107 | 136 => 857,
            150 => 10007,
            200 => 1250,
            201 => 1251,
            202 => 1254,
            203 => 1253,
            204 => 1257,
            _ => return None,
        };
        Self::from_code_page(code_page)
    }

    /// A readable name for messages and metadata.
    pub fn name(&self) -> String {
        match self {
            TextEncoding::Utf8 => "UTF-8".to_string(),
            TextEncoding::Latin1 => "ISO-8859-1".to_string(),
            TextEncoding::Whatwg(encoding) => encoding.name().to_string(),
            TextEncoding::Oem(code, _) | TextEncoding::OemPartial(code, _) => format!("CP{code}"),
        }
    }

    /// Decodes `bytes`; `None` when they are not valid in this encoding.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Option<Cow<'a, str>> {
        if bytes.is_ascii() {
            return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
        }
        match self {
            TextEncoding::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            TextEncoding::Latin1 => {
                Some(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
            }
            TextEncoding::Whatwg(encoding) => {
                encoding.decode_without_bom_handling_and_without_replacement(bytes)
            }
            TextEncoding::Oem(_, table) => Some(Cow::Owned(
                bytes
                    .iter()
                    .map(|&b| match upper_half(b) {
                        Some(i) => table.get(i).copied().unwrap_or(char::REPLACEMENT_CHARACTER),
                        None => char::from(b),
                    })
                    .collect(),
            )),
            TextEncoding::OemPartial(_, table) => bytes
                .iter()
                .map(|&b| match upper_half(b) {
                    Some(i) => table.get(i).copied().flatten(),
                    None => Some(char::from(b)),
                })
                .collect::<Option<String>>()
                .map(Cow::Owned),
        }
    }
}

/// The index into a 128-entry upper-half table, for bytes >= 0x80.
#[inline]
fn upper_half(byte: u8) -> Option<usize> {
    byte.checked_sub(0x80).map(usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_seen_in_the_wild() {
        assert_eq!(TextEncoding::from_label("UTF-8"), Some(TextEncoding::Utf8));
        assert_eq!(TextEncoding::from_label("utf8\n"), Some(TextEncoding::Utf8));
        assert_eq!(
            TextEncoding::from_label("ISO-8859-1"),
            Some(TextEncoding::Latin1)
        );
        assert_eq!(
            TextEncoding::from_label("88591"),
            Some(TextEncoding::Latin1)
        );
        assert_eq!(
            TextEncoding::from_label("ANSI 1252"),
            Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1252))
        );
        assert_eq!(
            TextEncoding::from_label("88596"),
            Some(TextEncoding::Whatwg(encoding_rs::ISO_8859_6))
        );
        assert_eq!(
            TextEncoding::from_label("885915"),
            Some(TextEncoding::Whatwg(encoding_rs::ISO_8859_15))
        );
        assert_eq!(
            TextEncoding::from_label("cp850").map(|e| e.name()),
            Some("CP850".into())
        );
        assert_eq!(
            TextEncoding::from_label("Big5"),
            Some(TextEncoding::Whatwg(encoding_rs::BIG5))
        );
        assert_eq!(TextEncoding::from_label("klingon"), None);
        assert_eq!(TextEncoding::from_label("UTF-16"), None);
    }

    #[test]
    fn ldid_bytes() {
        assert_eq!(TextEncoding::from_ldid(0), None);
        assert_eq!(TextEncoding::from_ldid(87), Some(TextEncoding::Latin1));
        assert_eq!(
            TextEncoding::from_ldid(0x57 + 1),
            Some(TextEncoding::Whatwg(encoding_rs::WINDOWS_1252))
        );
        assert_eq!(
            TextEncoding::from_ldid(0x13).map(|e| e.name()),
            Some("Shift_JIS".into())
        );
        assert_eq!(
            TextEncoding::from_ldid(2).map(|e| e.name()),
            Some("CP850".into())
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(
            TextEncoding::Latin1.decode(b"caf\xe9").as_deref(),
            Some("café")
        );
        assert_eq!(TextEncoding::Utf8.decode(b"caf\xe9"), None);
        assert_eq!(
            TextEncoding::Utf8.decode("café".as_bytes()).as_deref(),
            Some("café")
        );
        let cp850 = TextEncoding::from_code_page(850).unwrap();
        assert_eq!(cp850.decode(b"\x82t\x82").as_deref(), Some("été"));
        let cp1252 = TextEncoding::from_code_page(1252).unwrap();
        assert_eq!(cp1252.decode(b"\x80").as_deref(), Some("€"));
    }
}
