-- Per-source vector tiles for Martin (docker/martin.yaml publishes only this function).
--
-- core_geometry holds every source's features, so publishing the table would give one
-- mixed layer; this function serves one source per request:
--   GET http://127.0.0.1:3000/core_geometry_by_source/{z}/{x}/{y}?source_id=42
-- The layer is named "core_geometry"; each feature has id = gid, the properties
-- geometry_type and source_id, and the keys of its metadata jsonb (ST_AsMVT spreads a
-- jsonb column into one property per key). Extent 4096 and buffer 64, Martin's defaults.
-- Lines and polygons are simplified to about a pixel of the zoom (a 4096th of the
-- tile), so a low-zoom tile does not carry vertices it cannot show.
-- Created by migration 0010 (0002 made the first version).
--
-- plan_cache_mode = force_custom_plan: PL/pgSQL caches a generic plan after five calls,
-- and a generic plan of `source_id = $1` cannot drop the partitions (one per source,
-- each with a CHECK on source_id) of the other sources at plan time.
CREATE OR REPLACE FUNCTION public.core_geometry_by_source(
    z integer, x integer, y integer, query_params json
) RETURNS bytea AS $$
DECLARE
    wanted text := query_params->>'source_id';
    tile geometry := ST_TileEnvelope(z, x, y);
    -- the tile plus the 64/4096 buffer, in the table's SRID
    bounds geometry := ST_Transform(ST_TileEnvelope(z, x, y, margin => 64.0 / 4096), 4326);
    -- one pixel of this zoom in Web Mercator metres
    tolerance float8 := (ST_XMax(tile) - ST_XMin(tile)) / 4096;
    mvt bytea;
BEGIN
    IF wanted IS NULL OR wanted !~ '^[0-9]{1,9}$' THEN
        RETURN ''::bytea;  -- no (or a malformed) source id: an empty tile, not an error
    END IF;
    SELECT ST_AsMVT(features, 'core_geometry', 4096, 'geom', 'gid') INTO mvt
    FROM (
        SELECT
            g.gid,
            g.geometry_type,
            g.source_id,
            g.metadata,
            ST_AsMVTGeom(
                CASE WHEN g.geometry_type IN ('Point', 'MultiPoint')
                    THEN ST_Transform(g.geom, 3857)
                    -- clip in 4326 first: Web Mercator is undefined at the poles
                    ELSE ST_Simplify(
                        ST_Transform(ST_ClipByBox2D(g.geom, bounds), 3857), tolerance, true
                    )
                END,
                tile, 4096, 64, true
            ) AS geom
        FROM public.core_geometry AS g
        WHERE g.source_id = wanted::integer
          AND g.geom && bounds
    ) AS features
    WHERE features.geom IS NOT NULL;
    RETURN COALESCE(mvt, ''::bytea);
END
$$ LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET plan_cache_mode = force_custom_plan;

COMMENT ON FUNCTION public.core_geometry_by_source(integer, integer, integer, json) IS
    '{"description": "Features of one core_source: ?source_id=<id>", "attribution": "maps platform"}';
