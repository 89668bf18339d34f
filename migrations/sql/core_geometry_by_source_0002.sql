-- Per-source vector tiles for Martin (docker/martin.yaml publishes only this function).
--
-- core_geometry holds every source's features in one table, so publishing the table
-- would give one mixed layer; this function serves one source per request:
--   GET http://localhost:3000/core_geometry_by_source/{z}/{x}/{y}?source_id=42
-- The layer is named "core_geometry"; each feature has id = gid, the properties
-- geometry_type and source_id, and the keys of its metadata jsonb.
-- Migration 0002 created this first version; 0010 replaced it (core_geometry_by_source.sql).
CREATE OR REPLACE FUNCTION public.core_geometry_by_source(
    z integer, x integer, y integer, query_params json
) RETURNS bytea AS $$
DECLARE
    wanted text := query_params->>'source_id';
    tile geometry := ST_TileEnvelope(z, x, y);
    -- the tile plus Martin's default 64/4096 buffer, in the table's SRID
    bounds geometry := ST_Transform(ST_TileEnvelope(z, x, y, margin => 64.0 / 4096), 4326);
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
            -- clip in 4326 first: Web Mercator is undefined at the poles
            ST_AsMVTGeom(
                ST_Transform(ST_ClipByBox2D(g.geom, bounds), 3857), tile, 4096, 64, true
            ) AS geom
        FROM public.core_geometry AS g
        WHERE g.source_id = wanted::integer
          AND g.geom && bounds
    ) AS features
    WHERE features.geom IS NOT NULL;
    RETURN COALESCE(mvt, ''::bytea);
END
$$ LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION public.core_geometry_by_source(integer, integer, integer, json) IS
    '{"description": "Features of one core_source: ?source_id=<id>", "attribution": "maps platform"}';
