{#-
  One row per session of the journey of a lead LeadTrackr still has (macros/not_deleted.sql),
  typed and cleaned; position 1 is the first touch.
-#}

select
    {%- if has_project_column() %}
    project,
    {%- endif %}
    cast(lead_id as bigint) as lead_id,
    cast("position" as integer) as touch_position,
    cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
    nullif(trim(source), '') as source,
    nullif(trim(medium), '') as medium,
    nullif(trim(campaign), '') as campaign,
    nullif(trim(content), '') as content,
    nullif(trim(term), '') as term,
    nullif(trim(landing_page), '') as landing_page
from {{ source('leadtrackr', 'lead_touchpoints') }}
{{ where_not_deleted(source('leadtrackr', 'lead_touchpoints')) }}
