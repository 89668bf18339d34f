//! Coordinate reference systems and transforms, through the system PROJ (proj-sys).
//!
//! The proj crate's `Proj` is neither `Send` nor able to export PROJJSON, so this
//! module holds a small safe wrapper over the C API instead: one PROJ context per
//! transformer (PROJ contexts must not be shared between threads), and a pool of
//! transformers that rayon workers borrow from.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::sync::{Mutex, OnceLock};

use proj_sys as sys;

use crate::error::{Error, Result};
use crate::fastpath::FastPath;

/// PROJ's "equivalent" for the identification of a .prj against the EPSG database.
const MIN_IDENTIFY_CONFIDENCE: i32 = 70;
/// Parsed CRSs kept between calls.
const CRS_CACHE_LIMIT: usize = 64;

/// A parsed CRS, kept as text so that any thread can rebuild it in its own context.
#[derive(Debug, Clone, PartialEq)]
pub struct Crs {
    /// What PROJ is given to rebuild the CRS: "EPSG:27700" once identified, else the
    /// original definition.
    pub definition: String,
    /// The CRS as PROJJSON (for GeoArrow / GeoParquet metadata).
    pub projjson: String,
    /// The CRS's name ("OSGB36 / British National Grid").
    pub name: String,
    /// "AUTHORITY:CODE" when known.
    pub authority: Option<String>,
}

struct Context(*mut sys::PJ_CONTEXT);

impl Context {
    fn new() -> Result<Self> {
        // SAFETY: proj_context_create has no preconditions; null means out of memory.
        let ctx = unsafe { sys::proj_context_create() };
        if ctx.is_null() {
            return Err(Error::crs("PROJ", "could not create a PROJ context"));
        }
        // SAFETY: ctx is a live context; silence PROJ's own stderr logging, errors
        // are read through proj_context_errno instead.
        unsafe { sys::proj_log_level(ctx, sys::PJ_LOG_LEVEL_PJ_LOG_NONE) };
        Ok(Self(ctx))
    }

    fn last_error(&self) -> String {
        // SAFETY: self.0 is live; the returned string is static or owned by the context
        // and copied before any other call.
        unsafe {
            let errno = sys::proj_context_errno(self.0);
            let text = sys::proj_context_errno_string(self.0, errno);
            if text.is_null() {
                format!("PROJ error {errno}")
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        }
    }

    /// Creates a PROJ object from any definition PROJ accepts.
    fn create(&self, definition: &str, context: &str) -> Result<Object<'_>> {
        let text = CString::new(definition)
            .map_err(|_| Error::crs(context, "CRS definition contains a NUL byte"))?;
        // SAFETY: ctx is live, text is a valid C string for the duration of the call.
        let obj = unsafe { sys::proj_create(self.0, text.as_ptr()) };
        if obj.is_null() {
            return Err(Error::crs(
                context,
                format!(
                    "PROJ cannot parse the CRS {:?}: {}",
                    abbreviate(definition),
                    self.last_error()
                ),
            ));
        }
        Ok(Object {
            ptr: obj,
            ctx: self,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every Object borrowing this context has been dropped (lifetimes).
        unsafe { sys::proj_context_destroy(self.0) };
    }
}

/// A PROJ object (CRS or operation) tied to its context.
struct Object<'c> {
    ptr: *mut sys::PJ,
    ctx: &'c Context,
}

impl Object<'_> {
    fn string(&self, text: *const c_char) -> Option<String> {
        if text.is_null() {
            None
        } else {
            // SAFETY: PROJ returns NUL-terminated strings owned by the object, alive
            // as long as self; they are copied here.
            Some(
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    fn is_crs(&self) -> bool {
        // SAFETY: ptr is a live object.
        unsafe { sys::proj_is_crs(self.ptr) != 0 }
    }

    fn name(&self) -> String {
        // SAFETY: ptr is a live object.
        self.string(unsafe { sys::proj_get_name(self.ptr) })
            .unwrap_or_default()
    }

    fn authority(&self) -> Option<String> {
        // SAFETY: ptr is a live object; index 0 is the first identifier if any.
        let auth = self.string(unsafe { sys::proj_get_id_auth_name(self.ptr, 0) })?;
        // SAFETY: as above.
        let code = self.string(unsafe { sys::proj_get_id_code(self.ptr, 0) })?;
        Some(format!("{auth}:{code}"))
    }

    fn projjson(&self, context: &str) -> Result<String> {
        let option = CString::new("MULTILINE=NO")
            .map_err(|_| Error::crs(context, "invalid PROJJSON option"))?;
        let options = [option.as_ptr(), ptr::null()];
        // SAFETY: ptr and ctx are live; options is a NULL-terminated array of C strings
        // that outlives the call.
        let text = unsafe { sys::proj_as_projjson(self.ctx.0, self.ptr, options.as_ptr()) };
        self.string(text).ok_or_else(|| {
            Error::crs(
                context,
                format!(
                    "PROJ cannot write the CRS as PROJJSON: {}",
                    self.ctx.last_error()
                ),
            )
        })
    }

    fn equivalent(&self, other: &Object<'_>) -> bool {
        // SAFETY: both objects are live and belong to the same context.
        unsafe {
            sys::proj_is_equivalent_to_with_ctx(
                self.ctx.0,
                self.ptr,
                other.ptr,
                sys::PJ_COMPARISON_CRITERION_PJ_COMP_EQUIVALENT_EXCEPT_AXIS_ORDER_GEOGCRS,
            ) != 0
        }
    }

    /// The best EPSG match of an unidentified CRS (a .prj's ESRI WKT), if PROJ
    /// considers it equivalent.
    fn identify_epsg(&self) -> Option<String> {
        let auth = CString::new("EPSG").ok()?;
        let mut confidence: *mut i32 = ptr::null_mut();
        // SAFETY: ctx and ptr are live; PROJ allocates the list and the confidence
        // array, both released below.
        let list = unsafe {
            sys::proj_identify(
                self.ctx.0,
                self.ptr,
                auth.as_ptr(),
                ptr::null(),
                &mut confidence,
            )
        };
        if list.is_null() {
            return None;
        }
        let mut found = None;
        // SAFETY: list is live; confidence has one entry per list item.
        unsafe {
            let count = sys::proj_list_get_count(list);
            if count > 0 && !confidence.is_null() && *confidence >= MIN_IDENTIFY_CONFIDENCE {
                let best = sys::proj_list_get(self.ctx.0, list, 0);
                if !best.is_null() {
                    let best = Object {
                        ptr: best,
                        ctx: self.ctx,
                    };
                    found = best.authority();
                }
            }
            sys::proj_int_list_destroy(confidence);
            sys::proj_list_destroy(list);
        }
        found
    }
}

impl Drop for Object<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr was returned by PROJ and is destroyed once.
        unsafe { sys::proj_destroy(self.ptr) };
    }
}

/// Whether a definition is in one of PROJ's structured forms rather than a bare name.
fn looks_structured(definition: &str) -> bool {
    let text = definition.trim();
    let upper = text.to_ascii_uppercase();
    let authority_code = text
        .split_once(':')
        .is_some_and(|(auth, code)| !auth.is_empty() && !code.is_empty() && !auth.contains(' '));
    authority_code
        || text.starts_with('{')
        || text.starts_with('+')
        || upper.starts_with("PROJ=")
        || upper.starts_with("URN:")
        || upper.starts_with("HTTP")
        || (text.contains('[') && text.ends_with(']'))
}

fn abbreviate(text: &str) -> String {
    let mut short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

impl Crs {
    /// Parses a CRS from anything PROJ accepts ("EPSG:27700", WKT1/ESRI WKT/WKT2,
    /// PROJJSON, PROJ strings). `context` names where it came from, for errors.
    /// Successful parses are cached (each costs PROJ database lookups).
    pub fn parse(definition: &str, context: &str) -> Result<Self> {
        type Cache = Mutex<HashMap<String, Crs>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let lock = || cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = lock().get(definition) {
            return Ok(found.clone());
        }
        let crs = Self::parse_uncached(definition, context)?;
        let mut guard = lock();
        if guard.len() >= CRS_CACHE_LIMIT {
            guard.clear();
        }
        guard.insert(definition.to_string(), crs.clone());
        Ok(crs)
    }

    fn parse_uncached(definition: &str, context: &str) -> Result<Self> {
        // A PROJ string describes a CRS only with +type=crs (GDAL and pyproj add it).
        let trimmed = definition.trim();
        let is_proj_string = trimmed.starts_with('+') || trimmed.starts_with("proj=");
        let with_type;
        let definition = if is_proj_string && !trimmed.contains("type=crs") {
            with_type = format!("{trimmed} +type=crs");
            with_type.as_str()
        } else {
            trimmed
        };
        let ctx = Context::new()?;
        let obj = ctx.create(definition.trim(), context)?;
        if !obj.is_crs() {
            return Err(Error::crs(
                context,
                format!(
                    "{:?} is not a coordinate reference system",
                    abbreviate(definition)
                ),
            ));
        }
        // PROJ also looks free text up by approximate name ("nope" finds a CRS of
        // Nepal): a bare name must be the CRS's exact name.
        if !looks_structured(definition) && !obj.name().eq_ignore_ascii_case(definition.trim()) {
            return Err(Error::crs(
                context,
                format!(
                    "{:?} is not a CRS definition (an AUTHORITY:CODE, WKT, PROJJSON or PROJ \
                     string); the closest CRS name is {:?}",
                    abbreviate(definition),
                    obj.name()
                ),
            ));
        }
        if let Some(authority) = obj.authority() {
            return Ok(Self {
                definition: definition.trim().to_string(),
                projjson: obj.projjson(context)?,
                name: obj.name(),
                authority: Some(authority),
            });
        }
        if let Some(authority) = obj.identify_epsg() {
            let known = ctx.create(&authority, context)?;
            if known.equivalent(&obj) {
                return Ok(Self {
                    projjson: known.projjson(context)?,
                    name: known.name(),
                    definition: authority.clone(),
                    authority: Some(authority),
                });
            }
        }
        Ok(Self {
            definition: definition.trim().to_string(),
            projjson: obj.projjson(context)?,
            name: obj.name(),
            authority: None,
        })
    }

    /// WGS 84 (EPSG:4326).
    pub fn wgs84() -> Result<Self> {
        Self::parse("EPSG:4326", "EPSG:4326")
    }

    /// Whether both describe the same CRS (axis order of geographic CRSs aside,
    /// since coordinates are always x/lon first here).
    pub fn equivalent(&self, other: &Crs) -> Result<bool> {
        if self.definition == other.definition {
            return Ok(true);
        }
        let ctx = Context::new()?;
        let a = ctx.create(&self.definition, &self.name)?;
        let b = ctx.create(&other.definition, &other.name)?;
        Ok(a.equivalent(&b))
    }

    /// A label for messages: the authority code or the name.
    pub fn label(&self) -> &str {
        self.authority.as_deref().unwrap_or(&self.name)
    }
}

/// One of the operations PROJ considers for a CRS pair, in the order (and with the
/// settings) `proj_create_crs_to_crs` lists them: best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    /// The operation as a PROJ string (before axis normalisation), if it has one.
    pub proj_string: Option<String>,
    /// Metres; negative when unknown (ballpark operations).
    pub accuracy: f64,
    /// Area of use: west, south, east, north (degrees).
    pub area: Option<[f64; 4]>,
}

/// The candidate operations from `source` to `target`.
pub fn candidate_operations(source: &Crs, target: &Crs) -> Result<Vec<Candidate>> {
    let context = format!("operations {} -> {}", source.label(), target.label());
    let ctx = Context::new()?;
    let src = ctx.create(&source.definition, &context)?;
    let dst = ctx.create(&target.definition, &context)?;
    // SAFETY: ctx is live; a null authority means any.
    let factory = unsafe { sys::proj_create_operation_factory_context(ctx.0, ptr::null()) };
    if factory.is_null() {
        return Err(Error::crs(context, ctx.last_error()));
    }
    // SAFETY: ctx, factory, src and dst are live; the factory is destroyed once, after
    // the operations are created.
    let list = unsafe {
        sys::proj_operation_factory_context_set_spatial_criterion(
            ctx.0,
            factory,
            sys::PROJ_SPATIAL_CRITERION_PROJ_SPATIAL_CRITERION_PARTIAL_INTERSECTION,
        );
        let grids = if sys::proj_context_is_network_enabled(ctx.0) != 0 {
            sys::PROJ_GRID_AVAILABILITY_USE_PROJ_GRID_AVAILABILITY_KNOWN_AVAILABLE
        } else {
            sys::PROJ_GRID_AVAILABILITY_USE_PROJ_GRID_AVAILABILITY_DISCARD_OPERATION_IF_MISSING_GRID
        };
        sys::proj_operation_factory_context_set_grid_availability_use(ctx.0, factory, grids);
        let list = sys::proj_create_operations(ctx.0, src.ptr, dst.ptr, factory);
        sys::proj_operation_factory_context_destroy(factory);
        list
    };
    if list.is_null() {
        return Err(Error::crs(context, ctx.last_error()));
    }
    let mut found = Vec::new();
    // SAFETY: list is live until destroyed below; every item is wrapped in an Object
    // (destroyed when dropped) and read through the context.
    unsafe {
        let count = sys::proj_list_get_count(list);
        for i in 0..count {
            let op = sys::proj_list_get(ctx.0, list, i);
            if op.is_null() {
                continue;
            }
            let op = Object { ptr: op, ctx: &ctx };
            let proj_string = op.string(sys::proj_as_proj_string(
                ctx.0,
                op.ptr,
                sys::PJ_PROJ_STRING_TYPE_PJ_PROJ_5,
                ptr::null(),
            ));
            let accuracy = sys::proj_coordoperation_get_accuracy(ctx.0, op.ptr);
            let (mut west, mut south, mut east, mut north) = (0.0, 0.0, 0.0, 0.0);
            let has_area = sys::proj_get_area_of_use(
                ctx.0,
                op.ptr,
                &mut west,
                &mut south,
                &mut east,
                &mut north,
                ptr::null_mut(),
            ) != 0
                && west > -1000.0;
            found.push(Candidate {
                name: op.name(),
                proj_string,
                accuracy,
                area: has_area.then_some([west, south, east, north]),
            });
        }
        sys::proj_list_destroy(list);
    }
    Ok(found)
}

/// A coordinate operation between two CRSs, x/lon first on both sides.
pub struct Transformer {
    op: *mut sys::PJ,
    ctx: Context,
}

// SAFETY: the operation and its context are owned exclusively by this value and only
// used through &mut self, so moving it to another thread is sound (PROJ's rule is one
// thread at a time per context).
unsafe impl Send for Transformer {}

impl Transformer {
    pub fn new(source: &Crs, target: &Crs) -> Result<Self> {
        let context = format!("transform {} -> {}", source.label(), target.label());
        let ctx = Context::new()?;
        let op = {
            let src = ctx.create(&source.definition, &context)?;
            let dst = ctx.create(&target.definition, &context)?;
            // SAFETY: ctx, src and dst are live; null area and options are allowed.
            let raw = unsafe {
                sys::proj_create_crs_to_crs_from_pj(
                    ctx.0,
                    src.ptr,
                    dst.ptr,
                    ptr::null_mut(),
                    ptr::null(),
                )
            };
            if raw.is_null() {
                return Err(Error::crs(
                    context,
                    format!("no coordinate operation: {}", ctx.last_error()),
                ));
            }
            let raw = Object {
                ptr: raw,
                ctx: &ctx,
            };
            // SAFETY: raw is live; the result is a new object (or null on failure).
            let normalized = unsafe { sys::proj_normalize_for_visualization(ctx.0, raw.ptr) };
            if normalized.is_null() {
                return Err(Error::crs(
                    context,
                    format!("cannot normalise axis order: {}", ctx.last_error()),
                ));
            }
            normalized
        };
        Ok(Self { op, ctx })
    }

    /// Transforms coordinates in place. On failure returns the index of the first
    /// coordinate PROJ could not transform, with PROJ's reason.
    pub fn transform(
        &mut self,
        xs: &mut [f64],
        ys: &mut [f64],
        zs: Option<&mut [f64]>,
    ) -> std::result::Result<(), (usize, String)> {
        let n = xs.len().min(ys.len());
        if n == 0 {
            return Ok(());
        }
        let stride = std::mem::size_of::<f64>();
        let (z_ptr, nz) = match zs {
            Some(zs) => (zs.as_mut_ptr(), zs.len().min(n)),
            None => (ptr::null_mut(), 0),
        };
        // SAFETY: op is live and used by this thread only (&mut self); the pointers
        // cover n (or nz) f64 values each with the given stride.
        unsafe {
            sys::proj_errno_reset(self.op);
            sys::proj_trans_generic(
                self.op,
                sys::PJ_DIRECTION_PJ_FWD,
                xs.as_mut_ptr(),
                stride,
                n,
                ys.as_mut_ptr(),
                stride,
                n,
                z_ptr,
                stride,
                nz,
                ptr::null_mut(),
                0,
                0,
            );
        }
        let failed = xs
            .iter()
            .zip(ys.iter())
            .position(|(x, y)| x.is_infinite() || y.is_infinite());
        match failed {
            Some(index) => Err((index, self.ctx.last_error())),
            None => Ok(()),
        }
    }
}

impl Drop for Transformer {
    fn drop(&mut self) {
        // SAFETY: op belongs to self.ctx, which is destroyed after this (field drop).
        unsafe { sys::proj_destroy(self.op) };
    }
}

/// Transformers for one source/target pair, lent to worker threads one at a time.
pub struct TransformerPool {
    pub source: Crs,
    pub target: Crs,
    idle: Mutex<Vec<Transformer>>,
    /// A closed-form transform proven equal to PROJ's, tried before PROJ.
    fast: Option<FastPath>,
}

impl TransformerPool {
    /// A pool, or `None` when the two CRSs are equivalent and nothing needs doing.
    pub fn new(source: &Crs, target: &Crs) -> Result<Option<Self>> {
        if source.equivalent(target)? {
            return Ok(None);
        }
        // Build one now so that an impossible operation fails at once.
        let mut first = Transformer::new(source, target)?;
        let fast = FastPath::detect(source, target, &mut first);
        Ok(Some(Self {
            source: source.clone(),
            target: target.clone(),
            idle: Mutex::new(vec![first]),
            fast,
        }))
    }

    /// Whether a closed-form transform stands in for PROJ where it can.
    pub fn fast_path(&self) -> Option<&FastPath> {
        self.fast.as_ref()
    }

    /// Transforms coordinates in place: the fast path when there is one and every
    /// coordinate is in its domain, else a PROJ transformer of the pool. The inner
    /// error is [`Transformer::transform`]'s.
    pub fn transform(
        &self,
        xs: &mut [f64],
        ys: &mut [f64],
        zs: Option<&mut [f64]>,
    ) -> Result<std::result::Result<(), (usize, String)>> {
        // The fast paths leave z alone, as PROJ's operations for them do.
        if let Some(fast) = &self.fast {
            if fast.apply(xs, ys, zs.as_deref()) {
                return Ok(Ok(()));
            }
        }
        self.with(|t| t.transform(xs, ys, zs))
    }

    /// Runs `f` with a transformer of this pool (created when all are in use).
    pub fn with<R>(&self, f: impl FnOnce(&mut Transformer) -> R) -> Result<R> {
        let borrowed = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let mut transformer = match borrowed {
            Some(t) => t,
            None => Transformer::new(&self.source, &self.target)?,
        };
        let result = f(&mut transformer);
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(transformer);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_identifies() {
        let crs = Crs::parse("EPSG:27700", "test").unwrap();
        assert_eq!(crs.authority.as_deref(), Some("EPSG:27700"));
        assert!(crs.projjson.contains("British National Grid"));
        let esri = r#"PROJCS["British_National_Grid",GEOGCS["GCS_OSGB_1936",DATUM["D_OSGB_1936",SPHEROID["Airy_1830",6377563.396,299.3249646]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",400000.0],PARAMETER["False_Northing",-100000.0],PARAMETER["Central_Meridian",-2.0],PARAMETER["Scale_Factor",0.9996012717],PARAMETER["Latitude_Of_Origin",49.0],UNIT["Meter",1.0]]"#;
        let from_prj = Crs::parse(esri, "x.prj").unwrap();
        assert_eq!(from_prj.authority.as_deref(), Some("EPSG:27700"));
        assert!(from_prj.equivalent(&crs).unwrap());
        assert!(Crs::parse("EPSG:999999", "test").is_err());
        assert!(Crs::parse("not a crs", "test").is_err());
        assert!(Crs::parse("nope", "test").is_err());
        assert!(Crs::parse("WGS 84", "test").is_ok());
        assert!(Crs::parse("+proj=longlat +datum=WGS84 +no_defs", "test").is_ok());
    }

    #[test]
    fn transforms_lon_lat_first() {
        let wgs84 = Crs::wgs84().unwrap();
        let merc = Crs::parse("EPSG:3857", "test").unwrap();
        let pool = TransformerPool::new(&wgs84, &merc).unwrap().unwrap();
        let mut xs = vec![10.0];
        let mut ys = vec![0.0];
        pool.with(|t| t.transform(&mut xs, &mut ys, None))
            .unwrap()
            .unwrap();
        assert!((xs[0] - 1_113_194.907_932_735_7).abs() < 1e-6, "{}", xs[0]);
        assert!(ys[0].abs() < 1e-6);
        // The proj crate (same libproj) agrees.
        let reference = proj::Proj::new_known_crs("EPSG:4326", "EPSG:3857", None).unwrap();
        let (x, _y) = reference.convert((10.0f64, 0.0f64)).unwrap();
        assert!((x - xs[0]).abs() < 1e-9);
        assert!(
            TransformerPool::new(&wgs84, &Crs::parse("OGC:CRS84", "t").unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reports_untransformable_points() {
        let wgs84 = Crs::wgs84().unwrap();
        let merc = Crs::parse("EPSG:3857", "test").unwrap();
        let mut t = Transformer::new(&wgs84, &merc).unwrap();
        let mut xs = vec![0.0, 0.0];
        let mut ys = vec![0.0, 95.0];
        let err = t.transform(&mut xs, &mut ys, None).unwrap_err();
        assert_eq!(err.0, 1);
    }
}
