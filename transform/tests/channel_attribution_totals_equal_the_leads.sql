{#-
  Under each attribution model, channel_attribution's credited leads, conversions and value
  add up to the leads, converted leads and value of lead_journeys (per project).
-#}
{%- set project = has_project_column() %}

with totals as (

    select
        {{ 'project, ' if project }}count(*) as leads,
        sum(case when status_group = 'converted' then 1 else 0 end) as conversions,
        coalesce(sum(price_cents), 0) as value_cents
    from {{ ref('lead_journeys') }}
    {{ 'group by project' if project }}

),

models as (

    {%- for model in attribution_models() %}
    select '{{ model }}' as attribution_model{{ ' union all' if not loop.last }}
    {%- endfor %}

),

credited as (

    select
        {{ with_project('attribution_model') }},
        sum(credited_leads) as leads,
        sum(credited_conversions) as conversions,
        sum(credited_value_cents) as value_cents
    from {{ ref('channel_attribution') }}
    group by {{ with_project('attribution_model') }}

)

select
    {{ 'totals.project, ' if project }}models.attribution_model,
    totals.leads,
    credited.leads as credited_leads,
    totals.conversions,
    credited.conversions as credited_conversions,
    totals.value_cents,
    credited.value_cents as credited_value_cents
from totals
cross join models
left join credited
    on credited.attribution_model = models.attribution_model
    {{ same_project('credited', 'totals') }}
{#- Sums of fractions: equal to a billionth. #}
where credited.leads is null
    {%- for figure in ['leads', 'conversions', 'value_cents'] %}
    or abs(credited.{{ figure }} - totals.{{ figure }}) > 1e-9 * greatest(totals.{{ figure }}, 1)
    {%- endfor %}
