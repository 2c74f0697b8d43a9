{#-
  One row per lead LeadTrackr still has (macros/not_deleted.sql), typed and cleaned. Column
  names are quoted as LeadTrackr spells them: PostgreSQL keeps that case, DuckDB (which
  lower-cases them) matches any case.
-#}
{%- set click_ids = ['gclid', 'gbraid', 'wbraid', 'dclid', 'msclkid', 'fbc', 'fbp', 'ttclid', 'li_fat_id'] -%}

with leads as (

    select
        {%- if has_project_column() %}
        project,
        {%- endif %}
        cast(id as bigint) as lead_id,
        cast("createdAt" as {{ dbt.type_timestamp() }}) as created_at,
        nullif(trim(status), '') as status,
        -- LeadTrackr's `price` is already in cents.
        cast(round(price) as bigint) as price_cents,
        nullif(trim("formName"), '') as form_name,
        nullif(trim("uniqueIdentifier"), '') as unique_identifier,
        {%- for key in click_ids %}
        -- Client-side tags send "" for an id they did not find: that is no id.
        nullif(trim("attributionData" ->> '{{ key }}'), '') as {{ key }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ source('leadtrackr', 'leads') }}
    {{ where_not_deleted(source('leadtrackr', 'leads')) }}

)

select
    *,
    case
        -- A lead always has a status; one without is taken as not yet rated.
        when status is null then 'open'
        when lower(status) in ('open', 'pending', 'lost') then lower(status)
        -- Any other status is one of the project's conversion labels.
        else 'converted'
    end as status_group,
    gclid is not null or gbraid is not null or wbraid is not null as has_google_click,
    -- As the warehouse report counts it: a Meta click id or browser id.
    fbc is not null or fbp is not null as has_meta_click,
    {{ click_channel(1) }} as click_source,
    {{ click_channel(2) }} as click_medium
from leads
