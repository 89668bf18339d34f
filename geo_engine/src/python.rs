use pyo3::prelude::*; #[pymodule] fn _geo_engine(_m: &Bound<PyModule>) -> PyResult<()> { Ok(()) }
