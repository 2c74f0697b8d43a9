{#-
  One row per lead: its status, value and the first and last touch of its journey. A lead
  without a journey takes its channel from its click ids (macros/click_channel.sql), or
  `(none)`; a journey's missing source, medium or campaign is `(none)` too.
-#}

with leads as (

    select * from {{ ref('stg_leadtrackr__leads') }}

),

touchpoints as (

    select * from {{ ref('stg_leadtrackr__lead_touchpoints') }}

),

journeys as (

    select
        {{ with_project('lead_id') }},
        count(*) as touchpoints,
        min(touch_position) as first_position,
        max(touch_position) as last_position
    from touchpoints
    group by {{ with_project('lead_id') }}

)

select
    {%- if has_project_column() %}
    leads.project,
    {%- endif %}
    leads.lead_id,
    leads.created_at,
    leads.status,
    leads.status_group,
    leads.price_cents,
    coalesce(journeys.touchpoints, 0) as touchpoints,
    first_touch.occurred_at as first_touch_at,
    {%- for touch in ['first_touch', 'last_touch'] %}
    {%- for part in ['source', 'medium', 'campaign'] %}
    case
        when journeys.lead_id is not null then coalesce({{ touch }}.{{ part }}, '(none)')
        {%- if part != 'campaign' %}
        else coalesce(leads.click_{{ part }}, '(none)')
        {%- else %}
        else '(none)'
        {%- endif %}
    end as {{ touch }}_{{ part }},
    {%- endfor %}
    {%- endfor %}
    last_touch.occurred_at as last_touch_at,
    leads.has_google_click,
    leads.has_meta_click
from leads
left join journeys
    on journeys.lead_id = leads.lead_id {{ same_project('journeys', 'leads') }}
left join touchpoints as first_touch
    on first_touch.lead_id = leads.lead_id {{ same_project('first_touch', 'leads') }}
    and first_touch.touch_position = journeys.first_position
left join touchpoints as last_touch
    on last_touch.lead_id = leads.lead_id {{ same_project('last_touch', 'leads') }}
    and last_touch.touch_position = journeys.last_position
