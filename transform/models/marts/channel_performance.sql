{#-
  Leads, conversions and value per month (of the lead's creation), attribution model and
  channel. Under each model every lead counts once: for its first or for its last touch.
-#}

with journeys as (

    select * from {{ ref('lead_journeys') }}

),

attributed as (
    {%- for model in ['first_touch', 'last_touch'] %}

    select
        {%- if has_project_column() %}
        project,
        {%- endif %}
        cast({{ dbt.date_trunc('month', 'created_at') }} as date) as month,
        '{{ model }}' as attribution_model,
        {{ model }}_source as source,
        {{ model }}_medium as medium,
        {{ model }}_campaign as campaign,
        status_group,
        price_cents
    from journeys
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

)

select
    {{ with_project('month, attribution_model, source, medium, campaign') }},
    count(*) as leads,
    cast(sum(case when status_group = 'converted' then 1 else 0 end) as bigint) as converted_leads,
    cast(sum(case when status_group = 'lost' then 1 else 0 end) as bigint) as lost_leads,
    cast(sum(case when status_group = 'converted' then 1 else 0 end) as {{ dbt.type_float() }})
        / count(*) as conversion_rate,
    cast(coalesce(sum(price_cents), 0) as bigint) as value_cents
from attributed
group by {{ with_project('month, attribution_model, source, medium, campaign') }}
