{#-
  Leads, conversions and value per month (of the lead's creation) and path: the channels
  (source / medium) of the lead's journey in order, as `google / cpc > (direct) / (none)`.
  A channel repeated in a row is one step, `google / cpc x3`; a path longer than
  `path_max_steps` keeps its first step and its last ones, with `...` between. A lead without
  a journey has its channel from lead_journeys as a path of one step.
-#}
{%- set project = has_project_column() %}
{%- set lead = 'project, lead_id' if project else 'lead_id' %}
{%- set max_steps = path_max_steps() %}

with journeys as (

    select * from {{ ref('lead_journeys') }}

),

touches as (

    select
        {%- if project %}
        touchpoints.project,
        {%- endif %}
        touchpoints.lead_id,
        touchpoints.touch_position,
        coalesce(touchpoints.source, '(none)') || ' / ' || coalesce(touchpoints.medium, '(none)')
            as channel
    from {{ ref('stg_leadtrackr__lead_touchpoints') }} as touchpoints
    inner join journeys
        on journeys.lead_id = touchpoints.lead_id {{ same_project('journeys', 'touchpoints') }}

),

-- A step starts where the channel changes.
steps_started as (

    select
        *,
        case
            when channel = lag(channel) over (partition by {{ lead }} order by touch_position)
                then 0
            else 1
        end as starts_step
    from touches

),

numbered as (

    select
        *,
        sum(starts_step) over (
            partition by {{ lead }} order by touch_position
            rows between unbounded preceding and current row
        ) as step
    from steps_started

),

steps as (

    select
        {{ with_project('lead_id') }},
        step,
        min(channel) as channel,
        count(*) as repeats,
        max(max(step)) over (partition by {{ lead }}) as steps
    from numbered
    group by {{ with_project('lead_id') }}, step

),

shown as (

    select
        {{ with_project('lead_id') }},
        step,
        case
            when steps > {{ max_steps }} and step = 2 then '...'
            when repeats > 1 then channel || ' x' || cast(repeats as {{ dbt.type_string() }})
            else channel
        end as label
    from steps
    -- The first step, and the last `path_max_steps - 1`: step 2 stands for those left out.
    where steps <= {{ max_steps }} or step <= 2 or step > steps - {{ max_steps - 1 }}

),

paths as (

    select
        {{ with_project('lead_id') }},
        {{ dbt.listagg('label', "' > '", 'order by step') }} as path
    from shown
    group by {{ with_project('lead_id') }}

)

select
    {%- if project %}
    journeys.project,
    {%- endif %}
    cast({{ dbt.date_trunc('month', 'journeys.created_at') }} as date) as month,
    coalesce(paths.path, journeys.first_touch_source || ' / ' || journeys.first_touch_medium)
        as path,
    count(*) as leads,
    cast(sum(case when journeys.status_group = 'converted' then 1 else 0 end) as bigint)
        as converted_leads,
    cast(sum(case when journeys.status_group = 'converted' then 1 else 0 end) as {{ type_double() }})
        / count(*) as conversion_rate,
    cast(coalesce(sum(journeys.price_cents), 0) as bigint) as value_cents
from journeys
left join paths
    on paths.lead_id = journeys.lead_id {{ same_project('paths', 'journeys') }}
group by {{ '1, 2, 3' if project else '1, 2' }}
