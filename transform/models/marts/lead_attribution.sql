{#-
  One row per lead, attribution model and touch that gets credit: the share of the lead it
  gets. Under each model one lead's credits add up to 1 (docs/models.md has the rules). A
  lead without a journey gives all of it to its channel in lead_journeys, under every model.
-#}
{%- set project = has_project_column() %}
{%- set lead = 'project, lead_id' if project else 'lead_id' %}
{%- set double = type_double() %}

with journeys as (

    select * from {{ ref('lead_journeys') }}

),

touches as (

    -- Only the touches of the leads in lead_journeys, so a lead left out there gets no credit.
    select
        {%- if project %}
        touchpoints.project,
        {%- endif %}
        touchpoints.lead_id,
        touchpoints.touch_position,
        coalesce(touchpoints.source, '(none)') as source,
        coalesce(touchpoints.medium, '(none)') as medium,
        coalesce(touchpoints.campaign, '(none)') as campaign,
        journeys.created_at,
        journeys.status_group,
        journeys.price_cents,
        -- A touch stamped after its lead (a visitor's clock) is as recent as the lead.
        greatest(
            {{ epoch_seconds('journeys.created_at') }} - {{ epoch_seconds('touchpoints.occurred_at') }},
            0
        ) / 86400.0 as days_before_lead
    from {{ ref('stg_leadtrackr__lead_touchpoints') }} as touchpoints
    inner join journeys
        on journeys.lead_id = touchpoints.lead_id {{ same_project('journeys', 'touchpoints') }}

),

extents as (

    -- Each journey's extent, in one pass: these windows share their partition and no order.
    select
        *,
        count(*) over (partition by {{ lead }}) as touches,
        min(touch_position) over (partition by {{ lead }}) as first_position,
        max(touch_position) over (partition by {{ lead }}) as last_position,
        -- The last touch that is not direct; a journey that is all direct has none.
        max(case when source <> '(direct)' then touch_position end)
            over (partition by {{ lead }}) as last_non_direct_position,
        min(days_before_lead) over (partition by {{ lead }}) as newest_days
    from touches

),

weighed as (

    select
        *,
        -- Weights relative to the newest touch (weight 1): never all 0, however old.
        power(
            cast(2 as {{ double }}),
            (newest_days - days_before_lead) / {{ time_decay_half_life_days() }}
        ) as decay_weight
    from extents

),

normalised as (

    select *, sum(decay_weight) over (partition by {{ lead }}) as decay_weights
    from weighed

),

models as (

    {%- for model in attribution_models() %}
    select '{{ model }}' as attribution_model{{ ' union all' if not loop.last }}
    {%- endfor %}

),

credited_touches as (

    select
        {%- if project %}
        normalised.project,
        {%- endif %}
        normalised.lead_id,
        models.attribution_model,
        normalised.touch_position,
        normalised.source,
        normalised.medium,
        normalised.campaign,
        normalised.created_at,
        normalised.status_group,
        normalised.price_cents,
        case models.attribution_model
            when 'first_touch' then case when touch_position = first_position then 1 else 0 end
            when 'last_touch' then case when touch_position = last_position then 1 else 0 end
            when 'last_non_direct' then
                case
                    when touch_position = coalesce(last_non_direct_position, last_position) then 1
                    else 0
                end
            when 'linear' then cast(1 as {{ double }}) / touches
            when 'position_based' then
                case
                    when touches = 1 then 1
                    when touches = 2 then cast(0.5 as {{ double }})
                    when touch_position in (first_position, last_position)
                        then cast(0.4 as {{ double }})
                    else cast(0.2 as {{ double }}) / (touches - 2)
                end
            when 'time_decay' then decay_weight / decay_weights
        end as credit
    from normalised
    cross join models

),

without_journey as (

    select
        {%- if project %}
        journeys.project,
        {%- endif %}
        journeys.lead_id,
        models.attribution_model,
        cast(null as integer) as touch_position,
        journeys.first_touch_source as source,
        journeys.first_touch_medium as medium,
        journeys.first_touch_campaign as campaign,
        journeys.created_at,
        journeys.status_group,
        journeys.price_cents,
        1 as credit
    from journeys
    cross join models
    where journeys.touchpoints = 0

),

credits as (

    select * from credited_touches where credit > 0
    union all
    select * from without_journey

)

select
    {%- if project %}
    project,
    {%- endif %}
    lead_id,
    created_at,
    attribution_model,
    touch_position,
    source,
    medium,
    campaign,
    cast(credit as {{ double }}) as credit,
    status_group,
    price_cents
from credits
