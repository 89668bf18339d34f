//! Shapefiles built byte by byte in a temporary folder.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::Array;

use super::geometry::tests::{ccw, cw, parts_record};
use super::*;
use crate::dbf::tests::dbf_bytes;

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("geo_engine_test_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main_header(shape_type: i32, len_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&9994i32.to_be_bytes());
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&((len_bytes / 2) as i32).to_be_bytes());
    out.extend_from_slice(&1000i32.to_le_bytes());
    out.extend_from_slice(&shape_type.to_le_bytes());
    out.extend_from_slice(&[0; 64]);
    out
}

/// .shp and .shx bytes for record contents.
pub fn shp_and_shx(shape_type: i32, records: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let mut body = Vec::new();
    let mut index = Vec::new();
    for (i, content) in records.iter().enumerate() {
        let offset = 100 + body.len();
        index.extend_from_slice(&((offset / 2) as i32).to_be_bytes());
        index.extend_from_slice(&((content.len() / 2) as i32).to_be_bytes());
        body.extend_from_slice(&((i + 1) as i32).to_be_bytes());
        body.extend_from_slice(&((content.len() / 2) as i32).to_be_bytes());
        body.extend_from_slice(content);
    }
    let mut shp = main_header(shape_type, 100 + body.len());
    shp.extend(body);
    let mut shx = main_header(shape_type, 100 + index.len());
    shx.extend(index);
    (shp, shx)
}

pub fn point_record(x: f64, y: f64) -> Vec<u8> {
    let mut out = 1i32.to_le_bytes().to_vec();
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
    out
}

fn write(dir: &Path, name: &str, shape_type: i32, records: &[Vec<u8>], dbf: &[u8]) -> PathBuf {
    let (shp, shx) = shp_and_shx(shape_type, records);
    let path = dir.join(format!("{name}.shp"));
    std::fs::write(&path, shp).unwrap();
    std::fs::write(dir.join(format!("{name}.shx")), shx).unwrap();
    std::fs::write(dir.join(format!("{name}.dbf")), dbf).unwrap();
    path
}

fn ids(n: usize) -> Vec<u8> {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let rows: Vec<Vec<&[u8]>> = values.iter().map(|v| vec![v.as_bytes()]).collect();
    dbf_bytes(&[("id", b'N', 5, 0)], &rows, &[], 0)
}

fn no_transform() -> ShapefileOptions {
    ShapefileOptions {
        target_crs: None,
        ..Default::default()
    }
}

#[test]
fn reads_points_with_nulls_and_deleted_rows() {
    let dir = TempDir::new("points");
    let records = vec![
        point_record(1.0, 2.0),
        0i32.to_le_bytes().to_vec(),
        point_record(3.0, 4.0),
        point_record(5.0, 6.0),
    ];
    let rows: Vec<Vec<&[u8]>> = vec![vec![b"0"], vec![b"1"], vec![b"2"], vec![b"3"]];
    let dbf = dbf_bytes(&[("id", b'N', 5, 0)], &rows, &[2], 0);
    let path = write(&dir.0, "pts", 1, &records, &dbf);
    let reader = ShapefileReader::try_new(
        &path,
        ShapefileOptions {
            batch_size: 3,
            ..no_transform()
        },
    )
    .unwrap();
    assert_eq!(reader.info().crs_source, CrsSource::Assumed);
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    let ids: Vec<i32> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
        .collect();
    assert_eq!(ids, vec![0, 1, 3]);
    let geometry = batches[0].column(1).as_binary::<i32>();
    assert!(geometry.is_null(1));
    assert_eq!(geometry.value(0).len(), 21);
    let field = batches[0].schema().field(1).clone();
    assert_eq!(field.metadata()["ARROW:extension:name"], "geoarrow.wkb");
    assert!(field.metadata()["ARROW:extension:metadata"].contains("\"crs\":{"));
}

#[test]
fn polygons_reprojected() {
    let dir = TempDir::new("polygons");
    let record = parts_record(
        5,
        &[
            cw(0.0, 0.0, 1.0, 1.0),
            cw(10.0, 10.0, 11.0, 11.0),
            ccw(10.2, 10.2, 10.5, 10.5),
        ],
        None,
    );
    let path = write(&dir.0, "poly", 5, &[record], &ids(1));
    let options = ShapefileOptions {
        target_crs: Some("EPSG:3857".into()),
        ..Default::default()
    };
    let mut reader = ShapefileReader::try_new(&path, options).unwrap();
    let batch = reader.next_batch().unwrap().unwrap();
    let wkb = batch.column(1).as_binary::<i32>().value(0).to_vec();
    assert_eq!(
        crate::wkb::peek_type(&wkb).unwrap().base,
        crate::wkb::MULTIPOLYGON
    );
    // The first x of the second polygon (10°E) in web mercator.
    let first_x_of_second = 9 + 9 + 4 + 80 + 9 + 4;
    let x = f64::from_le_bytes(
        wkb[first_x_of_second..first_x_of_second + 8]
            .try_into()
            .unwrap(),
    );
    assert!((x - 1_113_194.907_932_735_7).abs() < 1e-6, "{x}");
}

#[test]
fn refuses_broken_files() {
    let dir = TempDir::new("broken");
    let records = vec![point_record(1.0, 2.0), point_record(3.0, 4.0)];
    // Counts differ.
    let path = write(&dir.0, "count", 1, &records, &ids(1));
    let err = ShapefileReader::try_new(&path, no_transform())
        .err()
        .unwrap();
    assert!(err.to_string().contains("record counts differ"), "{err}");
    // Truncated .shp: the last record is cut.
    let path = write(&dir.0, "trunc", 1, &records, &ids(2));
    let shp = std::fs::read(&path).unwrap();
    std::fs::write(&path, &shp[..shp.len() - 4]).unwrap();
    let err = ShapefileReader::try_new(&path, no_transform())
        .err()
        .unwrap();
    assert!(err.to_string().contains("record 2"), "{err}");
    assert!(matches!(err, Error::Format { .. }));
    // Text in place of a .shp.
    let path = dir.0.join("text.shp");
    std::fs::write(&path, b"hello").unwrap();
    assert!(ShapefileReader::try_new(&path, no_transform()).is_err());
    // MultiPatch.
    let path = write(
        &dir.0,
        "patch",
        31,
        &[31i32.to_le_bytes().to_vec()],
        &ids(1),
    );
    let err = ShapefileReader::try_new(&path, no_transform())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

#[test]
fn rebuilds_a_missing_shx() {
    let dir = TempDir::new("noshx");
    let records = vec![point_record(1.0, 2.0), point_record(3.0, 4.0)];
    let path = write(&dir.0, "pts", 1, &records, &ids(2));
    std::fs::remove_file(dir.0.join("pts.shx")).unwrap();
    let reader = ShapefileReader::try_new(&path, no_transform()).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);
}

#[test]
fn reads_geometry_only_without_a_dbf_or_shx() {
    let dir = TempDir::new("nodbf");
    let records = vec![point_record(1.0, 2.0), point_record(3.0, 4.0)];
    let path = write(&dir.0, "pts", 1, &records, &ids(2));
    std::fs::remove_file(dir.0.join("pts.dbf")).unwrap();
    let reader = ShapefileReader::try_new(&path, no_transform()).unwrap();
    assert_eq!(reader.info().missing, vec!["dbf"]);
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches[0].num_columns(), 1);
    assert_eq!(batches[0].schema().field(0).name(), GEOMETRY_COLUMN);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    std::fs::remove_file(dir.0.join("pts.shx")).unwrap();
    let reader = ShapefileReader::try_new(&path, no_transform()).unwrap();
    assert_eq!(reader.info().missing, vec!["shx", "dbf"]);
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);
}

#[test]
fn reads_from_memory() {
    let records = vec![point_record(1.0, 2.0), point_record(3.0, 4.0)];
    let (shp, shx) = shp_and_shx(1, &records);
    let name = Path::new("mem/pts.shp");
    for shx in [Some(shx), None] {
        let parts = ShapefileParts::from_memory(name, shp.clone(), shx, Some(ids(2)), None, None);
        let mut reader = ShapefileReader::from_parts(parts, no_transform()).unwrap();
        let batches = reader.read_all().unwrap();
        assert_eq!(batches[0].num_rows(), 2);
    }
    let parts = ShapefileParts::from_memory(name, shp, None, Some(ids(3)), None, None);
    let err = ShapefileReader::from_parts(parts, no_transform())
        .err()
        .unwrap();
    assert!(err.to_string().contains("mem/pts.shp"), "{err}");
}
